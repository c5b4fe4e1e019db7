package heddle

// Mappings of pooled segments, kept by segment id (docs/plugins.md, "Mapping cache"). The
// worker's registry reuses a released segment's file for a later object under a new name but
// the same id; a plugin that kept its mapping reads the next object with no system call at
// all, where mapping afresh costs an open, a stat, an mmap, page faults and an munmap (tens of
// microseconds each on a virtual machine). A file's id is never given to another file, so a
// cached mapping is always of the file the handle means. The cache holds at most cacheSlots
// mappings, and a mapping whose file the registry removed is let go within sweepEvery, so
// that the memory the registry frees is freed.

import (
	"fmt"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

const (
	// cacheSlots matches the registry's pool (runtime/registry/mod.ts POOL_SLOTS).
	cacheSlots = 16
	sweepEvery = time.Second
)

type cachedSegment struct {
	fd      int // kept open: its link count says when the registry removed the file
	mapping []byte
	users   int
	lastUse uint64
}

type segmentCache struct {
	mu       sync.Mutex
	byID     map[string]*cachedSegment
	clock    uint64
	sweeping bool
}

var segments = &segmentCache{byID: map[string]*cachedSegment{}}

// mapFile maps a whole segment file read-only; the caller closes fd when it does not keep it.
func mapFile(segment string) (fd int, mapping []byte, err error) {
	f, err := os.Open(SegmentPath(segment))
	if err != nil {
		return -1, nil, err
	}
	// The descriptor outlives the *os.File: duplicated so that f's finalizer cannot close it.
	fd, err = unix.Dup(int(f.Fd()))
	f.Close()
	if err != nil {
		return -1, nil, err
	}
	var st unix.Stat_t
	if err = unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return -1, nil, err
	}
	if st.Size == 0 {
		unix.Close(fd)
		return -1, nil, fmt.Errorf("segment `%s` is empty", segment)
	}
	mapping, err = unix.Mmap(fd, 0, int(st.Size), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		unix.Close(fd)
		return -1, nil, fmt.Errorf("cannot map `%s`: %w", segment, err)
	}
	return fd, mapping, nil
}

// acquire returns the mapping of the file with this id, mapping `segment` on a miss, and a
// function that hands it back.
func (c *segmentCache) acquire(segment, id string) ([]byte, func(), error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.clock++
	entry := c.byID[id]
	if entry == nil {
		fd, mapping, err := mapFile(segment)
		if err != nil {
			return nil, nil, err
		}
		// In use from the start, so that making room never evicts it.
		entry = &cachedSegment{fd: fd, mapping: mapping, users: 1, lastUse: c.clock}
		c.byID[id] = entry
		c.evictBeyond(cacheSlots)
		if !c.sweeping {
			c.sweeping = true
			go c.sweepForever()
		}
	} else {
		entry.users++
		entry.lastUse = c.clock
	}
	return entry.mapping, func() {
		c.mu.Lock()
		entry.users--
		c.mu.Unlock()
	}, nil
}

// evictBeyond drops the least recently used idle mappings until at most n are kept.
func (c *segmentCache) evictBeyond(n int) {
	for len(c.byID) > n {
		victim := ""
		for id, e := range c.byID {
			if e.users == 0 && (victim == "" || e.lastUse < c.byID[victim].lastUse) {
				victim = id
			}
		}
		if victim == "" {
			return // every mapping is in use: the cache grows until one is handed back
		}
		c.drop(victim)
	}
}

func (c *segmentCache) drop(id string) {
	e := c.byID[id]
	delete(c.byID, id)
	_ = unix.Munmap(e.mapping)
	_ = unix.Close(e.fd)
}

// sweep drops idle mappings of files the registry has removed.
func (c *segmentCache) sweep() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for id, e := range c.byID {
		var st unix.Stat_t
		if e.users == 0 && (unix.Fstat(e.fd, &st) != nil || st.Nlink == 0) {
			c.drop(id)
		}
	}
}

func (c *segmentCache) sweepForever() {
	for range time.Tick(sweepEvery) {
		c.sweep()
	}
}
