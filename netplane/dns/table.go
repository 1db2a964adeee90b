package dns

import (
	"net/netip"
	"strings"
	"sync/atomic"
)

// Records is what the Table answers from: network ID -> name -> addresses. Names are
// service names, aliases, "tasks.<service>" and task names, lower-case and without a
// trailing dot (Replace normalises them anyway).
type Records map[string]map[string][]netip.Addr

// Table holds the names every network resolves. Lookups are safe from any number of
// goroutines and take no lock; Replace swaps in a new index. The zero Table is empty
// and ready to use.
type Table struct {
	view atomic.Pointer[view]
}

// view is one immutable generation of a Table.
type view struct {
	networks map[string]*zone
}

// zone is one network's names and the reverse index built from them.
type zone struct {
	names map[string][]netip.Addr
	ptr   map[netip.Addr]string // fully qualified, with the trailing dot
}

// Replace makes records the Table's whole content. The Table keeps its own copy, so
// the caller may change records afterwards. Only IPv4 addresses are kept (the overlay
// is IPv4); a name with none left is still known and answers with no address.
func (t *Table) Replace(records Records) {
	v := &view{networks: make(map[string]*zone, len(records))}
	for id, names := range records {
		v.networks[id] = newZone(names)
	}
	t.view.Store(v)
}

// current returns the Table's present generation, empty before the first Replace.
func (t *Table) current() *view {
	if v := t.view.Load(); v != nil {
		return v
	}
	return &view{}
}

func newZone(names map[string][]netip.Addr) *zone {
	z := &zone{names: make(map[string][]netip.Addr, len(names)), ptr: map[netip.Addr]string{}}
	for name, addrs := range names {
		key := canonical(name)
		if key == "" {
			continue
		}
		kept := z.names[key] // two spellings of one name are merged
		if kept == nil {
			kept = make([]netip.Addr, 0, len(addrs))
		}
		for _, a := range addrs {
			if a = a.Unmap(); a.Is4() {
				kept = append(kept, a)
			}
		}
		z.names[key] = kept
	}
	z.buildReverse()
	return z
}

// buildReverse picks, for each address, the one name a PTR query answers. The Table
// is not told which name is a task's and which a service's, so the choice follows how
// the agent names things: "tasks.<service>" never (it names a set); then the name
// with more labels ("<service>.<slot>.<task-id>" over "<service>" in dnsrr mode);
// then the name with fewer addresses (a task name owns its address, a dnsrr service
// name shares it); then the lexically smaller, so the choice is stable.
func (z *zone) buildReverse() {
	chosen := map[netip.Addr]string{}
	for name, addrs := range z.names {
		if strings.HasPrefix(name, "tasks.") {
			continue
		}
		for _, a := range addrs {
			if cur, ok := chosen[a]; !ok || z.betterPTR(name, cur) {
				chosen[a] = name
			}
		}
	}
	for a, name := range chosen {
		z.ptr[a] = name + "."
	}
}

// betterPTR reports whether name is a better reverse name than cur.
func (z *zone) betterPTR(name, cur string) bool {
	if ln, lc := strings.Count(name, "."), strings.Count(cur, "."); ln != lc {
		return ln > lc
	}
	if an, ac := len(z.names[name]), len(z.names[cur]); an != ac {
		return an < ac
	}
	return name < cur
}

// lookup returns the addresses of name on the first of networks that knows it.
func (v *view) lookup(networks []string, name string) ([]netip.Addr, bool) {
	for _, id := range networks {
		if z := v.networks[id]; z != nil {
			if addrs, ok := z.names[name]; ok {
				return addrs, true
			}
		}
	}
	return nil, false
}

// reverse returns the name of a on the first of networks that knows it.
func (v *view) reverse(networks []string, a netip.Addr) (string, bool) {
	for _, id := range networks {
		if z := v.networks[id]; z != nil {
			if name, ok := z.ptr[a]; ok {
				return name, true
			}
		}
	}
	return "", false
}

// canonical is the Table's spelling of a DNS name: lower-case, no trailing dot. It
// does not allocate for a name already in that form.
func canonical(name string) string {
	return strings.ToLower(strings.TrimSuffix(name, "."))
}
