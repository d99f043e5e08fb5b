package web

import (
	"context"
	"sync"
)

// background runs short tasks after their request has been answered (the
// confirmation mails), at most n at once, and lets the server wait for them
// when it stops: no task outlives close.
type background struct {
	ctx   context.Context
	stop  context.CancelFunc
	slots chan struct{}
	wg    sync.WaitGroup

	mu     sync.Mutex
	closed bool
}

func newBackground(n int) *background {
	ctx, stop := context.WithCancel(context.Background())
	return &background{ctx: ctx, stop: stop, slots: make(chan struct{}, n)}
}

// run starts task and reports whether it did; after close it does not.
// The task's context is cancelled when close gives up waiting.
func (b *background) run(task func(ctx context.Context)) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return false
	}
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		select {
		case b.slots <- struct{}{}:
			defer func() { <-b.slots }()
		case <-b.ctx.Done():
			return
		}
		task(b.ctx)
	}()
	return true
}

// wait returns when no task is running.
func (b *background) wait() { b.wg.Wait() }

// close refuses new tasks and waits for the running ones until ctx is done,
// then cancels them and waits for them to return.
func (b *background) close(ctx context.Context) error {
	b.mu.Lock()
	b.closed = true
	b.mu.Unlock()
	done := make(chan struct{})
	go func() {
		b.wg.Wait()
		close(done)
	}()
	defer b.stop()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		b.stop()
		<-done
		return ctx.Err()
	}
}
