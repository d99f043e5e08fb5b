package msittest

import (
	"fmt"
	"strings"
)

// brokenScript replaces fn_detail with goView, which reads the post's id
// from a data-ntt attribute; the page names neither fn_detail nor view.do.
const brokenScript = `<script>
  function goView(el) {
    var f = document.mainForm;
    f.nttSeqNo.value = el.getAttribute('data-ntt');
    f.action = location.pathname.replace('list', 'view');
    f.submit();
  }
  function fn_paging(pageIndex) {
    document.mainForm.pageIndex.value = pageIndex;
    document.mainForm.action = location.pathname;
    document.mainForm.submit();
  }
</script>
`

// brokenList is a list page in ShapeBroken: plain rows whose links carry
// the post id only in data-ntt attributes.
func brokenList(v listView) string {
	var b strings.Builder
	englishListTop(&b, v, brokenScript)
	if v.bd.Gallery {
		b.WriteString("  <div class=\"board_gallery\">\n    <ul class=\"gallery_list\">\n")
		if len(v.rows) == 0 {
			b.WriteString("      <li class=\"no_data\">" + noPosts + "</li>\n")
		}
		for _, p := range v.rows {
			dept := ""
			if !v.hideDept {
				dept = fmt.Sprintf("<span class=\"dept\">%s</span>", esc(p.Department))
			}
			fmt.Fprintf(&b, "      <li data-ntt=\"%d\"><a href=\"#none\" class=\"go_view\" data-ntt=\"%d\" onclick=\"goView(this); return false;\"><span class=\"thumb\"><img src=\"%s\" alt=\"%s\"></span><strong class=\"tit\">%s</strong></a>%s<span class=\"date\">%s</span></li>\n",
				p.ID, p.ID, esc(p.Thumbnail), esc(p.Title), esc(p.Title), dept, p.Date)
		}
		b.WriteString("    </ul>\n  </div>\n")
		return englishListBottom(&b, v)
	}
	tableHead(&b, v.bd, v.hideDept)
	if len(v.rows) == 0 {
		tableEmpty(&b, v.hideDept)
	}
	for i, p := range v.rows {
		dept := ""
		if !v.hideDept {
			dept = fmt.Sprintf("<td class=\"dept\">%s</td>", esc(p.Department))
		}
		fmt.Fprintf(&b, "        <tr data-ntt=\"%d\"><td class=\"num\">%d</td><td class=\"subject\"><a href=\"#none\" class=\"go_view\" data-ntt=\"%d\" onclick=\"goView(this); return false;\">%s</a></td>%s<td class=\"date\">%s</td></tr>\n",
			p.ID, v.firstNo-i, p.ID, esc(p.Title), dept, p.Date)
	}
	b.WriteString("      </tbody>\n    </table>\n  </div>\n")
	return englishListBottom(&b, v)
}
