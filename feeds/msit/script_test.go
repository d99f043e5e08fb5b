package msit

import (
	"reflect"
	"testing"
)

func TestScriptRun(t *testing.T) {
	tests := []struct {
		name   string
		script string
		want   map[string]string
	}{
		{
			name:   "concatenated selector and unescaped value",
			script: `var sHtml = ''; sHtml += unescape('A%20B'); $('#td_'+'NTT_SJ'+'_0').html(sHtml);`,
			want:   map[string]string{"td_NTT_SJ_0": "A B"},
		},
		{
			name: "commented statements do not run",
			script: `//$('#td_NTT_SJ_0').html('line comment');
/* $('#td_NTT_SJ_1').html('block comment'); */
<!-- $('#td_NTT_SJ_2').html('html comment');
$('#td_NTT_SJ_3').html('live // not a comment');`,
			want: map[string]string{"td_NTT_SJ_3": "live // not a comment"},
		},
		{
			name: "if with differing literals is dead, equal literals live",
			script: `if ('PSTG_YMD' == 'REG_DT') { $('#td_PSTG_YMD_0').html('1999-01-01'); }
if ('PSTG_YMD' === 'PSTG_YMD') $('#td_PSTG_YMD_1').html('2024-10-30');
if ('A' != 'A') { $('#x').html('dead'); } else { $('#y').html('else runs'); }`,
			want: map[string]string{"td_PSTG_YMD_1": "2024-10-30", "y": "else runs"},
		},
		{
			name:   "assignments in dead branches do not change variables",
			script: `var v = 'kept'; if ('a' == 'b') { v = 'dead'; } $('#x').html(v);`,
			want:   map[string]string{"x": "kept"},
		},
		{
			name:   "text() escapes its value as HTML",
			script: `$('#x').text('a < b & c');`,
			want:   map[string]string{"x": "a &lt; b &amp; c"},
		},
		{
			name:   "getElementById innerHTML",
			script: `document.getElementById('td_NO_0').innerHTML = '12';`,
			want:   map[string]string{"td_NO_0": "12"},
		},
		{
			name:   "statements without semicolons on separate lines",
			script: "var s = 'a'\ns += 'b'\n$('#x').html(s)\n$('#y').html('c')",
			want:   map[string]string{"x": "ab", "y": "c"},
		},
		{
			name:   "unknown calls are skipped, not guessed",
			script: `$('#x').html(foo('bar')); $('#y').html('ok'); function f() { $('#z').html('never'); }`,
			want:   map[string]string{"y": "ok"},
		},
		{
			name:   "surrogate halves escaped in separate calls join as in UTF-16",
			script: `var s = ''; s += unescape('Lab %uD83D'); s += unescape('%uDE00!'); $('#x').html(s); $('#y').html('\uD83D' + '\uDE00');`,
			want:   map[string]string{"x": "Lab 😀!", "y": "😀"},
		},
		{
			name:   "a half without its pair is replaced",
			script: `$('#x').html(unescape('%uD83D') + 'a'); $('#y').html(unescape('%uDE00%uD83D'));`,
			want:   map[string]string{"x": "\uFFFDa", "y": "\uFFFD\uFFFD"},
		},
		{
			name: "variables defined elsewhere read as empty (one script for every row, Korean site)",
			script: `var sHtml = replyHrml; sHtml+= unescape(ctgryHtml); sHtml+= unescape('%uCCAB'); sHtml+= newHtml;
$('#td_'+'NTT_SJ'+'_0').html(sHtml);
var sHtml = replyHrml; sHtml+= unescape(ctgryHtml); sHtml+= unescape('raw 둘'); sHtml+= newHtml;
$('#td_'+'NTT_SJ'+'_1').html(sHtml);`,
			want: map[string]string{"td_NTT_SJ_0": "첫", "td_NTT_SJ_1": "raw 둘"},
		},
		{
			name:   "a truncated script keeps what ran",
			script: `$('#a').html('done'); sHtml += unescape('Minister%20me`,
			want:   map[string]string{"a": "done"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newScriptRun()
			r.run(tt.script)
			if !reflect.DeepEqual(r.cells, tt.want) {
				t.Errorf("cells = %q, want %q", r.cells, tt.want)
			}
		})
	}
}

func TestCallArgs(t *testing.T) {
	tests := []struct {
		src, fn string
		want    []string
		ok      bool
	}{
		{"fn_detail(1284);", "fn_detail", []string{"1284"}, true},
		{"javascript:fn_detail('776');return false;", "fn_detail", []string{"776"}, true},
		{"fn_download('54751', '3', 'pdf');", "fn_download", []string{"54751", "3", "pdf"}, true},
		{"fn_preview('1')", "fn_download", nil, false},
	}
	for _, tt := range tests {
		got, ok := callArgs(tt.src, tt.fn)
		if ok != tt.ok || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("callArgs(%q, %q) = %q, %v; want %q, %v", tt.src, tt.fn, got, ok, tt.want, tt.ok)
		}
	}
}
