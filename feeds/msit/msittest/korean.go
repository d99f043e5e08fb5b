package msittest

import (
	"fmt"
	"time"

	"github.com/msitfeed/msitfeed/feeds"
)

// KoreanBoards returns two boards of the ministry's Korean site, served
// under /bbs/list.do?sCode=user&... and /bbs/view.do?sCode=user&... in
// ShapeKorean whatever the site's shape.
func KoreanBoards() []feeds.Board {
	return []feeds.Board{
		{Slug: "ko-press", Name: "보도자료", MID: "307", MPID: "208", BBSSeqNo: "94", Lang: "ko", SCode: "user", Dir: "/bbs"},
		{Slug: "ko-notice", Name: "공지사항", MID: "129", MPID: "121", BBSSeqNo: "100", Lang: "ko", SCode: "user", Dir: "/bbs"},
	}
}

// KoreanSampleToday returns the date KoreanSamplePosts are dated back
// from: 2026-10-01.
func KoreanSampleToday() time.Time { return time.Date(2026, time.October, 1, 0, 0, 0, 0, time.UTC) }

// KoreanSamplePostsPerBoard is how many posts KoreanSamplePosts gives each
// Korean board: more than one list page.
const KoreanSamplePostsPerBoard = 12

var koreanTitles = map[string][]string{
	"ko-press": {
		"과기정통부, 인공지능 반도체 산업 육성 전략 발표",
		"2026년도 국가연구개발사업 예산 배분·조정안 확정",
		"과기정통부 'K-클라우드' 확산 & 데이터센터 지원 방안 발표",
		"6G 상용화 기술개발 사업 착수…2030년 세계 최초 상용화 목표",
		"누리호 5차 발사 성공적으로 완료",
		"양자과학기술 플래그십 프로젝트 본격 추진",
		"“디지털 포용” 주간 행사 개최",
		"정보보호 산업 육성을 위한 민관 협의체 출범",
		"바이오·헬스 데이터 플랫폼 구축 사업 선정 결과 발표",
		"이동통신 단말기 유통구조 개선 방안 발표",
		"우주과학 대중 강연 「별과 함께하는 밤」 개최",
		"과학기술 인재 양성 종합계획(2026~2030) 수립",
	},
	"ko-notice": {
		"2026년도 과학기술정보통신부 연구개발사업 종합시행계획 공고",
		"2026년 하반기 정보통신방송 기술개발사업 신규과제 공모",
		"「인공지능 기본법」 시행령 제정안 입법예고",
		"2027년도 해외 우수 과학기술인 초청 사업 안내",
		"공공 SW 사업 제안요청서 <작성 가이드> 개정 안내",
		"과학기술정보통신부 공무직 근로자 채용 공고",
		"국가정보화 기본계획 의견 수렴",
		"2026년도 우수 연구성과 100선 후보 추천 안내",
		"전파사용료 감면 신청 안내",
		"과학의 날 유공자 포상 추천 공고",
		"연구실 안전관리 실태조사 결과 공개",
		"정보통신공사업 등록 기준 개정 고시",
	},
}

var koreanDepartments = []string{
	"인공지능반도체과", "연구개발정책과", "정보통신산업정책과", "전파정책기획과",
	"거대공공연구정책과", "양자혁신기술개발과", "디지털포용정책과", "정보보호산업과",
	"생명기술과", "통신이용제도과", "우주항공정책과", "인재정책기획과",
}

var koreanTopics = []string{
	"인공지능 반도체", "차세대 네트워크", "양자 기술", "우주 발사체", "디지털 포용",
	"바이오 데이터", "사이버 보안", "공개 소프트웨어",
}

// koreanIDTop gives each Korean board's newest id and the step down.
var koreanIDTop = map[string][2]int64{"ko-press": {3186887, 7}, "ko-notice": {3185120, 5}}

// KoreanSamplePosts returns a fixed set of posts for KoreanBoards:
// KoreanSamplePostsPerBoard each, dated back from KoreanSampleToday, with
// seven-digit ids, Korean titles (one holding both '&' and an apostrophe,
// one '<' and '>'), and HWPX/PDF or HWP attachments on some. Every call
// returns the same posts. They are not part of SamplePosts: pass them to
// NewSite (or AddPost them) to serve them.
func KoreanSamplePosts() []Post {
	var posts []Post
	for bi, bd := range KoreanBoards() {
		top := koreanIDTop[bd.Slug]
		for i := range KoreanSamplePostsPerBoard {
			id := top[0] - int64(i)*top[1]
			date := KoreanSampleToday().AddDate(0, 0, -(i*2 + bi))
			p := Post{
				Board:      bd.Slug,
				ID:         id,
				Title:      koreanTitles[bd.Slug][i],
				Date:       date.Format("2006-01-02"),
				Department: koreanDepartments[(i+bi*5)%len(koreanDepartments)],
			}
			topic := koreanTopics[(i*3+bi)%len(koreanTopics)]
			p.BodyHTML = fmt.Sprintf(`<p>과학기술정보통신부는 %d월 %d일 %s 분야의 정책 방향을 발표했다고 밝혔다.</p>
<p>이번 발표는 %s에서 주관하였으며, 관계 부처와 함께 세부 과제를 마련할 계획이다.</p>
<p>자세한 내용은 붙임 자료를 참고하시기 바랍니다.</p>`, int(date.Month()), date.Day(), topic, p.Department)
			switch bd.Slug {
			case "ko-press":
				if i%3 != 2 {
					p.Attachments = []Attachment{
						{Name: fmt.Sprintf("(보도자료) %d.hwpx", id), FileNo: 410000 + id%10000, Ord: 1, Ext: "hwpx"},
						{Name: fmt.Sprintf("(보도자료) %d.pdf", id), FileNo: 410000 + id%10000, Ord: 2, Ext: "pdf"},
					}
				}
			case "ko-notice":
				if i%2 == 0 {
					p.Attachments = []Attachment{
						{Name: "붙임1. 공고문.hwp", FileNo: 420000 + id%10000, Ord: 1, Ext: "hwp"},
						{Name: "붙임2. 신청서 양식 & 작성 예시.hwpx", FileNo: 420000 + id%10000, Ord: 2, Ext: "hwpx"},
					}
				}
			}
			posts = append(posts, p)
		}
	}
	return posts
}
