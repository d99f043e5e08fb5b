package msittest

import (
	"fmt"
	"strings"
)

// english2026List is a list page in ShapeEnglish2026: empty cells, and per
// row a script whose title statement carries the row's only link.
func english2026List(v listView) string {
	var b strings.Builder
	englishListTop(&b, v, listScript)
	if v.bd.Gallery {
		b.WriteString("  <div class=\"board_gallery\">\n    <ul class=\"gallery_list\">\n")
		if len(v.rows) == 0 {
			b.WriteString("      <li class=\"no_data\">" + noPosts + "</li>\n")
		}
		for i, p := range v.rows {
			fmt.Fprintf(&b, "      <li>\n        <div class=\"tit\" id=\"td_NTT_SJ_%d\"></div>\n", i)
			if !v.hideDept {
				fmt.Fprintf(&b, "        <span class=\"dept\" id=\"td_CHRG_DEPT_NM_%d\"></span>\n", i)
			}
			fmt.Fprintf(&b, "        <span class=\"date\" id=\"td_REG_DT_%d\"></span>\n        <span class=\"blind\" id=\"td_NO_%d\"></span>\n      </li>\n", i, i)
			english2026Script(&b, i, p, v.firstNo-i, v.hideDept, true)
		}
		b.WriteString("    </ul>\n  </div>\n")
		return englishListBottom(&b, v)
	}
	tableHead(&b, v.bd, v.hideDept)
	if len(v.rows) == 0 {
		tableEmpty(&b, v.hideDept)
	}
	for i, p := range v.rows {
		dept := fmt.Sprintf(`<td id="td_CHRG_DEPT_NM_%d"></td>`, i)
		if v.hideDept {
			dept = ""
		}
		fmt.Fprintf(&b, "        <tr><td id=\"td_NO_%[1]d\"></td><td id=\"td_NTT_SJ_%[1]d\"></td>%[2]s<td id=\"td_REG_DT_%[1]d\"></td></tr>\n", i, dept)
		english2026Script(&b, i, p, v.firstNo-i, v.hideDept, false)
	}
	b.WriteString("      </tbody>\n    </table>\n  </div>\n")
	return englishListBottom(&b, v)
}

// english2026Link is the HTML a title statement sets: the row's link, with
// the id in double quotes inside the double-quoted onclick (broken as HTML,
// as on the live site). Even rows leave apostrophes in the span text as
// they are (the JS literal then writes \'), odd rows write them &#39;; the
// title attribute always has &#39;.
func english2026Link(i int, p Post, gallery bool) string {
	text := htmlText(p.Title)
	if i%2 == 1 {
		text = strings.ReplaceAll(text, "'", "&#39;")
	}
	inner := "<span>" + text + "</span>"
	if gallery {
		inner = fmt.Sprintf(`<span class="thumb"><img src="%s" alt="%s"></span><strong class="tit">%s</strong>`, htmlAttr(p.Thumbnail), htmlAttr(p.Title), text)
	}
	return fmt.Sprintf(`<a href="javascript:;" onclick="fn_detail("%d")" title="%s">%s</a>`, p.ID, htmlAttr(p.Title), inner)
}

// english2026Script fills row i: a dead block-commented draft title, the
// live title, department and number, then the date among a commented-out
// copy and a branch that never runs.
func english2026Script(b *strings.Builder, i int, p Post, no int, hideDept, gallery bool) {
	draft := p
	draft.Title = "[draft] " + p.Title
	b.WriteString("        <script>\n")
	fmt.Fprintf(b, "        /* $('#td_'+'NTT_SJ'+'_%d').html(%s); */\n", i, jsString(english2026Link(i, draft, gallery)))
	fmt.Fprintf(b, "        $('#td_'+'NTT_SJ'+'_%d').html(%s);\n", i, jsString(english2026Link(i, p, gallery)))
	if !hideDept {
		fmt.Fprintf(b, "        $('#td_'+'CHRG_DEPT_NM'+'_%d').html(%s);\n", i, jsString(htmlText(p.Department)))
	}
	fmt.Fprintf(b, "        $('#td_'+'NO'+'_%d').html('%d');\n", i, no)
	fmt.Fprintf(b, "        //$('#td_'+'REG_DT'+'_%d').html('%s');\n", i, engDate(shiftDay(p.Date, -1)))
	fmt.Fprintf(b, "        if('REG_DT' == 'REG_DT'){ $('#td_'+'REG_DT'+'_%d').html(%s) }\n", i, jsString(engDate(p.Date)))
	fmt.Fprintf(b, "        if('REG_DT' == 'PSTG_YMD'){ $('#td_'+'REG_DT'+'_%d').html('%s') }\n", i, engDate(shiftDay(p.Date, 30)))
	b.WriteString("        </script>\n")
}

// titleParagraph is the paragraph the 2026 and Korean post pages open
// their body with: the post's title.
func titleParagraph(title string) string {
	return "<p style=\"text-align: center;\"><strong>" + esc(title) + "</strong></p>"
}
