package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"strconv"
	"syscall"
)

// defaultRunUser is who a daemon started as root becomes when the config
// names no user: like dnsmasq, rblmilter never keeps root by accident, and
// `rblmilter` run by root on a fresh machine still works.
const defaultRunUser = "nobody"

// identity is the process's view of its own user: what the privilege drop
// reads and changes. systemIdentity is the real one; in-process tests use
// none (environment.identity nil), so that they never change their own uid.
type identity interface {
	Geteuid() int
	Getegid() int
	LookupUser(name string) (*user.User, error)
	LookupGroup(name string) (*user.Group, error)
	// SetIDs switches the whole process (every thread) to uid, gid and
	// the supplementary groups, for good.
	SetIDs(uid, gid int, groups []int) error
}

// privilegePlan is who the daemon becomes after binding its sockets.
type privilegePlan struct {
	// change is false when the daemon stays who it is.
	change bool
	uid    int
	gid    int
	groups []int
	// user and group name the target in logs.
	user, group string
	// defaulted: running as root with no user set, so defaultRunUser.
	defaulted bool
	// root: running as root and told to stay root (user = "root").
	root bool
}

// planPrivileges decides who to become, from the config's user and group
// (names or numeric ids) and the current identity. It changes nothing.
//
// As root: user (default "nobody") and group (default: the user's primary
// group) are switched to; user = "root" (or "0") keeps root. As any other
// user: user and group must be empty or name who the process already is,
// since only root can switch.
func planPrivileges(userName, groupName string, id identity) (privilegePlan, error) {
	euid := id.Geteuid()
	p := privilegePlan{uid: -1, gid: -1, user: userName, group: groupName}
	if euid != 0 && userName == "" && groupName == "" {
		return p, nil
	}
	if euid == 0 && userName == "" {
		userName, p.user, p.defaulted = defaultRunUser, defaultRunUser, true
	}
	if userName != "" {
		u, err := lookupAccount(id, userName)
		if err != nil {
			if p.defaulted {
				return p, fmt.Errorf("user: rblmilter was started as root and switches to an unprivileged user after binding its sockets, "+
					"but no user is set and %q does not exist: set user = \"NAME\" (or user = \"root\" to keep running as root)", defaultRunUser)
			}
			return p, fmt.Errorf("user: %w", err)
		}
		p.uid, _ = strconv.Atoi(u.Uid)
		if u.Gid != "" {
			p.gid, _ = strconv.Atoi(u.Gid)
		}
		if p.uid != 0 {
			ids, _ := u.GroupIds()
			for _, s := range ids {
				if n, err := strconv.Atoi(s); err == nil {
					p.groups = append(p.groups, n)
				}
			}
		}
	}
	if groupName != "" {
		g, err := lookupGroupAccount(id, groupName)
		if err != nil {
			return p, fmt.Errorf("group: %w", err)
		}
		p.gid, _ = strconv.Atoi(g.Gid)
		p.groups = append(p.groups, p.gid)
	}
	if p.gid < 0 {
		return p, fmt.Errorf("user: %q has no group on this machine; set group too", userName)
	}
	if len(p.groups) == 0 {
		p.groups = []int{p.gid}
	}
	if p.uid == 0 && euid == 0 {
		p.root = true
	}
	if euid != 0 {
		if (p.uid < 0 || p.uid == euid) && p.gid == id.Getegid() {
			return privilegePlan{uid: -1, gid: -1, user: userName, group: groupName}, nil // already who we should be
		}
		return p, fmt.Errorf("user/group: switching to %q/%q needs root (running as uid %d)", userName, groupName, euid)
	}
	p.change = !p.root || groupName != ""
	return p, nil
}

// dropPrivileges switches to the configured user and group once the sockets
// are bound (ports below 1024 and socket ownership may need root; nothing
// after does), and logs who the daemon now is.
func (d *daemon) dropPrivileges(cfg *daemonConfig) error {
	id := d.env.identity
	if id == nil {
		return nil
	}
	p, err := planPrivileges(cfg.User, cfg.Group, id)
	if err != nil {
		return err
	}
	if p.change {
		if err := id.SetIDs(p.uid, p.gid, p.groups); err != nil {
			return err
		}
	}
	switch {
	case p.root:
		d.logger.Warn("running as root, as user = \"root\" asks; an unprivileged user is safer", "user", p.user)
	case p.change:
		reason := "user"
		if p.defaulted {
			reason = "started as root with no user set"
		}
		d.logger.Info("dropped root privileges", "user", p.user, "uid", p.uid, "gid", p.gid, "reason", reason)
	}
	if p.change && !p.root {
		d.checkReadableAfterDrop(cfg, p.user)
	}
	return nil
}

// checkReadableAfterDrop warns when the new user cannot read the config
// file: SIGHUP reloads would then fail.
func (d *daemon) checkReadableAfterDrop(cfg *daemonConfig, userName string) {
	if cfg.Source == embeddedSource {
		return
	}
	f, err := os.Open(cfg.Source)
	if err == nil {
		f.Close()
		return
	}
	if errors.Is(err, fs.ErrPermission) {
		d.logger.Warn("the config file is not readable by the user rblmilter now runs as: SIGHUP reloads will fail "+
			"(make it readable to that user or its group, or set user)", "config", cfg.Source, "user", userName)
	}
}

// systemIdentity is the process's real identity.
type systemIdentity struct{}

func (systemIdentity) Geteuid() int { return os.Geteuid() }
func (systemIdentity) Getegid() int { return os.Getegid() }

func (systemIdentity) LookupUser(name string) (*user.User, error) { return user.Lookup(name) }

func (systemIdentity) LookupGroup(name string) (*user.Group, error) { return user.LookupGroup(name) }

// SetIDs applies to every thread of the process (Go 1.16 and later), then
// makes sure root cannot be regained.
func (systemIdentity) SetIDs(uid, gid int, groups []int) error {
	if err := syscall.Setgroups(groups); err != nil {
		return fmt.Errorf("group: setgroups: %w", err)
	}
	if err := syscall.Setgid(gid); err != nil {
		return fmt.Errorf("group: setgid %d: %w", gid, err)
	}
	if uid < 0 || uid == 0 {
		return nil
	}
	if err := syscall.Setuid(uid); err != nil {
		return fmt.Errorf("user: setuid %d: %w", uid, err)
	}
	if err := syscall.Setuid(0); err == nil {
		return errors.New("user: root privileges could be regained after setuid; refusing to run")
	}
	return nil
}

// lookupAccount finds a user by name or numeric id; an id without a
// passwd entry is accepted as is (with no group: group must then be set).
func lookupAccount(id identity, name string) (*user.User, error) {
	if _, err := strconv.Atoi(name); err == nil {
		if u, err := user.LookupId(name); err == nil {
			return u, nil
		}
		return &user.User{Uid: name}, nil
	}
	return id.LookupUser(name)
}

func lookupGroupAccount(id identity, name string) (*user.Group, error) {
	if _, err := strconv.Atoi(name); err == nil {
		if g, err := user.LookupGroupId(name); err == nil {
			return g, nil
		}
		return &user.Group{Gid: name}, nil
	}
	return id.LookupGroup(name)
}
