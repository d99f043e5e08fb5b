// Package templates holds msitfeed's embedded template files: mail/ for the
// digest and confirmation mails, web/ for the public pages, and the feed
// stylesheet. It holds files only, no logic.
package templates
