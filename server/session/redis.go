package session

import (
	"errors"
	"time"

	"github.com/alexedwards/scs/goredisstore"
	"github.com/alexedwards/scs/v2"
	"github.com/redis/go-redis/v9"
)

// Key prefixes in Redis. Every replica must use the same ones to share sessions.
const (
	RedisSessionPrefix = "smartlabs:scs:"
	RedisKVPrefix      = "smartlabs:kv:"
)

// NewRedisClient returns a go-redis client for url (redis:// or rediss://)
// with short timeouts: when Redis is down a request should get our 503 page
// within seconds, not hang until the load balancer gives up.
func NewRedisClient(url string) (*redis.Client, error) {
	opt, err := redis.ParseURL(url)
	if err != nil {
		// The URL may carry a password: the parse error is not passed on.
		return nil, errors.New("not a valid Redis URL")
	}
	opt.DialTimeout = 2 * time.Second
	opt.ReadTimeout = 2 * time.Second
	opt.WriteTimeout = 2 * time.Second
	opt.PoolTimeout = 3 * time.Second
	opt.MaxRetries = 1
	opt.DialerRetries = 2
	opt.DialerRetryTimeout = 50 * time.Millisecond
	return redis.NewClient(opt), nil
}

// NewRedisStores returns the scs store and the launch-record KV on one Redis
// client, as every replica wires them. NewManager encrypts the scs store; the
// KV's values are encrypted by the Manager before they reach it.
func NewRedisStores(c *redis.Client) (scs.Store, *RedisKV) {
	return goredisstore.NewWithPrefix(c, RedisSessionPrefix), NewRedisKV(c, RedisKVPrefix)
}
