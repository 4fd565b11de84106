package e2e

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/chromedp/cdproto"
	"github.com/chromedp/cdproto/cdp"
	jsonv2 "github.com/chromedp/cdproto/cdp/jsonv2"
	"github.com/chromedp/cdproto/target"
	"github.com/chromedp/chromedp"
)

// tapIDBase is the first message id of the commands that the tap sends itself.
// Chrome parses ids as 32-bit integers, and chromedp counts up from 1, so the
// two ranges never meet in a test.
const tapIDBase = 1 << 30

// tap sits between chromedp and the browser connection. It sees every message
// that the browser sends, also the messages of the out-of-process iframe
// sessions that chromedp drops, and it can send its own commands on any session.
type tap struct {
	inner chromedp.Transport
	next  atomic.Int64

	mu       sync.Mutex
	waiters  map[int64]func(*cdproto.Message)
	owners   map[target.SessionID]*tabState // the sessions whose events a tab records
	children map[target.SessionID]bool      // the sessions that only the tap knows

	// debugf, when set, gets one line per message: its direction, id, session
	// and method, never its parameters (they can hold URLs with secrets).
	debugf func(format string, args ...any)
}

func newTap() *tap {
	t := &tap{
		waiters:  make(map[int64]func(*cdproto.Message)),
		owners:   make(map[target.SessionID]*tabState),
		children: make(map[target.SessionID]bool),
	}
	t.next.Store(tapIDBase)
	return t
}

// Read returns the next message for chromedp. It handles the replies to the
// tap's own commands and the messages of the child sessions on the way, on the
// goroutine of chromedp that reads the connection, so it never waits for a reply.
func (t *tap) Read(ctx context.Context, msg *cdproto.Message) error {
	for {
		*msg = cdproto.Message{}
		if err := t.inner.Read(ctx, msg); err != nil {
			t.failWaiters()
			return err
		}
		if t.debugf != nil {
			errText := ""
			if msg.Error != nil {
				errText = msg.Error.Message
			}
			t.debugf("<- id=%d session=%.8s %s %s", msg.ID, msg.SessionID, msg.Method, errText)
		}
		if msg.ID >= tapIDBase && msg.Method == "" {
			t.mu.Lock()
			fn := t.waiters[msg.ID]
			delete(t.waiters, msg.ID)
			t.mu.Unlock()
			if fn != nil {
				// A copy, because the next read reuses msg.
				reply := *msg
				fn(&reply)
			}
			continue
		}
		if msg.Method == "" || msg.SessionID == "" {
			return nil
		}
		t.mu.Lock()
		st := t.owners[msg.SessionID]
		child := t.children[msg.SessionID]
		t.mu.Unlock()
		if st != nil {
			st.handle(t, msg)
		}
		if !child {
			return nil
		}
		// chromedp has no target for a child session and would drop the message.
	}
}

// Write sends a message of chromedp to the browser.
func (t *tap) Write(ctx context.Context, msg *cdproto.Message) error {
	if t.debugf != nil {
		t.debugf("-> id=%d session=%.8s %s", msg.ID, msg.SessionID, msg.Method)
	}
	return t.inner.Write(ctx, msg)
}

// Close closes the connection.
func (t *tap) Close() error {
	return t.inner.Close()
}

// failWaiters ends every command that waits for a reply, because none will come.
func (t *tap) failWaiters() {
	t.mu.Lock()
	ws := t.waiters
	t.waiters = make(map[int64]func(*cdproto.Message))
	t.mu.Unlock()
	for _, fn := range ws {
		fn(nil)
	}
}

// register makes the tap record the events of session for st.
func (t *tap) register(session target.SessionID, st *tabState, child bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.owners[session] = st
	if child {
		t.children[session] = true
	}
}

// unregister forgets session.
func (t *tap) unregister(session target.SessionID) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.owners, session)
	delete(t.children, session)
}

// send writes a command on session and calls fn with the reply, or with nil when
// the connection ends first. fn runs on the reading goroutine and must not block.
func (t *tap) send(session target.SessionID, method string, params any, fn func(*cdproto.Message)) error {
	buf, err := jsonv2.Marshal(params, chromedp.DefaultMarshalOptions)
	if err != nil {
		return err
	}
	id := t.next.Add(1)
	if fn != nil {
		t.mu.Lock()
		t.waiters[id] = fn
		t.mu.Unlock()
	}
	msg := &cdproto.Message{ID: id, SessionID: session, Method: cdproto.MethodType(method), Params: buf}
	if t.debugf != nil {
		t.debugf("-> id=%d session=%.8s %s (tap)", msg.ID, msg.SessionID, msg.Method)
	}
	if err := t.inner.Write(context.Background(), msg); err != nil {
		t.mu.Lock()
		delete(t.waiters, id)
		t.mu.Unlock()
		return err
	}
	return nil
}

// call sends a command on session and waits for its reply.
func call[P, R any](ctx context.Context, t *tap, session target.SessionID, cmd cdp.Command[P, R], params P) (R, error) {
	var res R
	ch := make(chan *cdproto.Message, 1)
	if err := t.send(session, cmd.Method, params, func(m *cdproto.Message) { ch <- m }); err != nil {
		return res, err
	}
	select {
	case <-ctx.Done():
		return res, fmt.Errorf("%s: %w", cmd.Method, ctx.Err())
	case m := <-ch:
		switch {
		case m == nil:
			return res, fmt.Errorf("%s: the connection to the browser ended", cmd.Method)
		case m.Error != nil:
			return res, fmt.Errorf("%s: %w", cmd.Method, m.Error)
		}
		if len(m.Result) > 0 {
			if err := jsonv2.Unmarshal(m.Result, &res, chromedp.DefaultUnmarshalOptions); err != nil {
				return res, fmt.Errorf("%s: %w", cmd.Method, err)
			}
		}
		return res, nil
	}
}
