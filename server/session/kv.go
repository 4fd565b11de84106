// Package session keeps browser sessions (scs) and per-launch records.
//
// The scs session holds only an opaque browser id. Everything about a launch
// (tokens, patient, pending authorization) lives in the KV under its own key,
// because scs loads and writes back the whole session blob per request: two
// tabs writing the same blob concurrently would overwrite each other.
package session

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// ErrStore wraps every failure of the backing store, so handlers can answer 503.
var ErrStore = errors.New("session store unavailable")

// KV is the small key-value interface launch records need. Implementations
// must be safe for concurrent use and shared by every replica.
type KV interface {
	// Get returns the value of key, and false when it is absent or expired.
	Get(ctx context.Context, key string) ([]byte, bool, error)
	// Set stores val under key for ttl.
	Set(ctx context.Context, key string, val []byte, ttl time.Duration) error
	// SetNX stores val only when key is absent and reports whether it did.
	SetNX(ctx context.Context, key string, val []byte, ttl time.Duration) (bool, error)
	// Take returns and deletes key atomically, so a value is consumed once.
	Take(ctx context.Context, key string) ([]byte, bool, error)
	// Delete removes key.
	Delete(ctx context.Context, key string) error
	// Ping reports whether the store is reachable.
	Ping(ctx context.Context) error
}

// MemoryKV is an in-process KV for a single replica.
type MemoryKV struct {
	mu   sync.Mutex
	m    map[string]memEntry
	now  func() time.Time
	stop chan struct{}
}

type memEntry struct {
	val []byte
	exp time.Time
}

var _ KV = (*MemoryKV)(nil)

// NewMemoryKV returns an empty MemoryKV that sweeps expired keys every minute.
func NewMemoryKV() *MemoryKV {
	kv := &MemoryKV{m: map[string]memEntry{}, now: time.Now, stop: make(chan struct{})}
	go kv.sweep(time.Minute)
	return kv
}

// Close stops the sweeper.
func (kv *MemoryKV) Close() { close(kv.stop) }

func (kv *MemoryKV) sweep(every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-kv.stop:
			return
		case <-t.C:
			kv.mu.Lock()
			now := kv.now()
			for k, e := range kv.m {
				if now.After(e.exp) {
					delete(kv.m, k)
				}
			}
			kv.mu.Unlock()
		}
	}
}

func (kv *MemoryKV) live(key string) (memEntry, bool) {
	e, ok := kv.m[key]
	if !ok || kv.now().After(e.exp) {
		return memEntry{}, false
	}
	return e, true
}

// Get implements KV.
func (kv *MemoryKV) Get(_ context.Context, key string) ([]byte, bool, error) {
	kv.mu.Lock()
	defer kv.mu.Unlock()
	e, ok := kv.live(key)
	return e.val, ok, nil
}

// Set implements KV.
func (kv *MemoryKV) Set(_ context.Context, key string, val []byte, ttl time.Duration) error {
	kv.mu.Lock()
	defer kv.mu.Unlock()
	kv.m[key] = memEntry{val: append([]byte(nil), val...), exp: kv.now().Add(ttl)}
	return nil
}

// SetNX implements KV.
func (kv *MemoryKV) SetNX(_ context.Context, key string, val []byte, ttl time.Duration) (bool, error) {
	kv.mu.Lock()
	defer kv.mu.Unlock()
	if _, ok := kv.live(key); ok {
		return false, nil
	}
	kv.m[key] = memEntry{val: append([]byte(nil), val...), exp: kv.now().Add(ttl)}
	return true, nil
}

// Take implements KV.
func (kv *MemoryKV) Take(_ context.Context, key string) ([]byte, bool, error) {
	kv.mu.Lock()
	defer kv.mu.Unlock()
	e, ok := kv.live(key)
	delete(kv.m, key)
	return e.val, ok, nil
}

// Delete implements KV.
func (kv *MemoryKV) Delete(_ context.Context, key string) error {
	kv.mu.Lock()
	defer kv.mu.Unlock()
	delete(kv.m, key)
	return nil
}

// Ping implements KV.
func (kv *MemoryKV) Ping(context.Context) error { return nil }

// Keys returns every live key; tests use it to inspect what is stored.
func (kv *MemoryKV) Keys() []string {
	kv.mu.Lock()
	defer kv.mu.Unlock()
	out := make([]string, 0, len(kv.m))
	for k := range kv.m {
		if _, ok := kv.live(k); ok {
			out = append(out, k)
		}
	}
	return out
}

// RedisKV is a KV in Redis, shared by every replica.
type RedisKV struct {
	c      *redis.Client
	prefix string
}

var _ KV = (*RedisKV)(nil)

// NewRedisKV returns a KV that stores keys under prefix in c.
func NewRedisKV(c *redis.Client, prefix string) *RedisKV {
	return &RedisKV{c: c, prefix: prefix}
}

func storeErr(err error) error {
	if err == nil || errors.Is(err, redis.Nil) {
		return nil
	}
	return errors.Join(ErrStore, err)
}

// Get implements KV.
func (kv *RedisKV) Get(ctx context.Context, key string) ([]byte, bool, error) {
	b, err := kv.c.Get(ctx, kv.prefix+key).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, storeErr(err)
	}
	return b, true, nil
}

// Set implements KV.
func (kv *RedisKV) Set(ctx context.Context, key string, val []byte, ttl time.Duration) error {
	return storeErr(kv.c.Set(ctx, kv.prefix+key, val, ttl).Err())
}

// SetNX implements KV.
func (kv *RedisKV) SetNX(ctx context.Context, key string, val []byte, ttl time.Duration) (bool, error) {
	ok, err := kv.c.SetNX(ctx, kv.prefix+key, val, ttl).Result()
	return ok, storeErr(err)
}

// Take implements KV with GETDEL, so two replicas can never both consume a value.
func (kv *RedisKV) Take(ctx context.Context, key string) ([]byte, bool, error) {
	b, err := kv.c.GetDel(ctx, kv.prefix+key).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, storeErr(err)
	}
	return b, true, nil
}

// Delete implements KV.
func (kv *RedisKV) Delete(ctx context.Context, key string) error {
	return storeErr(kv.c.Del(ctx, kv.prefix+key).Err())
}

// Ping implements KV.
func (kv *RedisKV) Ping(ctx context.Context) error {
	return storeErr(kv.c.Ping(ctx).Err())
}
