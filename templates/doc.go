// Package templates holds msitfeed's embedded template files: mail/ for the
// digest and confirmation mails, web/ for the public pages (a feed's page
// among them). It holds files only, no logic.
package templates
