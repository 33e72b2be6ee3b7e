package main

import (
	"fmt"
	"os"
	"os/user"
	"strconv"
	"syscall"
)

// dropPrivileges switches to userName and groupName (names or numeric ids)
// after the sockets are bound. With only a user, its primary and
// supplementary groups are used. Since Go 1.16 the set*id calls apply to
// every thread of the process.
func dropPrivileges(userName, groupName string) error {
	if userName == "" && groupName == "" {
		return nil
	}
	uid, gid := -1, -1
	var groups []int
	if userName != "" {
		u, err := lookupAccount(userName)
		if err != nil {
			return fmt.Errorf("user: %w", err)
		}
		uid, _ = strconv.Atoi(u.Uid)
		if u.Gid != "" {
			gid, _ = strconv.Atoi(u.Gid)
		}
		ids, _ := u.GroupIds()
		for _, s := range ids {
			if n, err := strconv.Atoi(s); err == nil {
				groups = append(groups, n)
			}
		}
	}
	if groupName != "" {
		g, err := lookupGroupAccount(groupName)
		if err != nil {
			return fmt.Errorf("group: %w", err)
		}
		gid, _ = strconv.Atoi(g.Gid)
		groups = append(groups, gid)
	}
	if gid < 0 {
		return fmt.Errorf("user: %q has no group on this machine; set group too", userName)
	}
	if len(groups) == 0 {
		groups = []int{gid}
	}
	if os.Geteuid() != 0 {
		if (uid < 0 || uid == os.Geteuid()) && gid == os.Getegid() {
			return nil // already who we should be
		}
		return fmt.Errorf("user/group: switching to %q/%q needs root (running as uid %d)", userName, groupName, os.Geteuid())
	}
	if err := syscall.Setgroups(groups); err != nil {
		return fmt.Errorf("group: setgroups: %w", err)
	}
	if err := syscall.Setgid(gid); err != nil {
		return fmt.Errorf("group: setgid %d: %w", gid, err)
	}
	if uid >= 0 {
		if err := syscall.Setuid(uid); err != nil {
			return fmt.Errorf("user: setuid %d: %w", uid, err)
		}
	}
	return nil
}

// lookupAccount finds a user by name or numeric id; an id without a
// passwd entry is accepted as is.
func lookupAccount(name string) (*user.User, error) {
	if _, err := strconv.Atoi(name); err == nil {
		if u, err := user.LookupId(name); err == nil {
			return u, nil
		}
		return &user.User{Uid: name}, nil
	}
	return user.Lookup(name)
}

func lookupGroupAccount(name string) (*user.Group, error) {
	if _, err := strconv.Atoi(name); err == nil {
		if g, err := user.LookupGroupId(name); err == nil {
			return g, nil
		}
		return &user.Group{Gid: name}, nil
	}
	return user.LookupGroup(name)
}
