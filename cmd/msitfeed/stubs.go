package main

import "context"

// Placeholders replaced by each command's own file as it lands.

func (m *Main) runServe(ctx context.Context, configPath string, args []string) error {
	return usagef("serve: not built yet")
}
func (m *Main) runStatus(ctx context.Context, configPath string, args []string) error {
	return usagef("status: not built yet")
}
func (m *Main) runFeeds(ctx context.Context, configPath string, args []string) error {
	return usagef("feeds: not built yet")
}
func (m *Main) runDemo(ctx context.Context, configPath string, args []string) error {
	return usagef("demo: not built yet")
}
func (m *Main) runCrawl(ctx context.Context, configPath string, args []string) error {
	return usagef("crawl: not built yet")
}
