package policy

import (
	"fmt"
	"path"
	"slices"
	"strings"
)

// FileOp is one kind of file operation of a file transfer (SFTP, scp).
type FileOp string

// The file operations rules name. An SFTP open is decided as read, write
// and/or create according to its flags; a directory listing as list.
const (
	FileRead     FileOp = "read"     // read a file's contents (download)
	FileWrite    FileOp = "write"    // write to a file (upload, append, truncate)
	FileCreate   FileOp = "create"   // create a file (an open that may create it)
	FileRemove   FileOp = "remove"   // delete a file
	FileRename   FileOp = "rename"   // rename or move (decided on both names)
	FileMkdir    FileOp = "mkdir"    // create a directory
	FileRmdir    FileOp = "rmdir"    // remove a directory
	FileSetstat  FileOp = "setstat"  // change mode, owner, times or size
	FileSymlink  FileOp = "symlink"  // create a symbolic or hard link (decided on the link and what it points to)
	FileReadlink FileOp = "readlink" // read where a symbolic link points
	FileList     FileOp = "list"     // list a directory
)

// FileOps lists every FileOp, in the order the documentation gives them.
var FileOps = []FileOp{FileRead, FileWrite, FileCreate, FileRemove, FileRename, FileMkdir, FileRmdir,
	FileSetstat, FileSymlink, FileReadlink, FileList}

// Valid reports whether o is one of FileOps.
func (o FileOp) Valid() bool { return slices.Contains(FileOps, o) }

// FileRule allows or denies file operations on paths. Paths are globs on
// the normalised absolute path (see CleanPath and MatchPath).
type FileRule struct {
	Name string // unique within its role; shown to users and in the audit log
	// Action is allow or deny (require-approval is refused by package
	// config; here it denies: a file operation cannot wait for approval).
	Action CommandAction
	Ops    []FileOp // the operations the rule is about; empty: all of them
	Paths  []string // absolute path globs; the rule matches a path that matches one
	// Targets selects the targets the rule applies to; an empty selector
	// means every target.
	Targets Selector
	// Reason is shown to the user when the rule denies an operation.
	Reason string
}

// FileDecision is the policy's answer for one file operation.
type FileDecision struct {
	Action CommandAction // allow or deny
	Rule   string        // the rule that decided; empty for a default
	Reason string        // safe to show the user; empty when allowed
}

// Allowed reports whether the operation may go ahead.
func (d FileDecision) Allowed() bool { return d.Action == CommandAllow }

func (r *FileRule) appliesTo(t *Target, op FileOp) bool {
	return (len(r.Ops) == 0 || slices.Contains(r.Ops, op)) && r.onTarget(t)
}

// onTarget reports whether the rule is in force on t.
func (r *FileRule) onTarget(t *Target) bool {
	return (len(r.Targets.Names) == 0 && len(r.Targets.Labels) == 0) || r.Targets.Matches(t)
}

// matches reports whether the rule matches p; an unknown path ("") matches
// only a rule that matches every path.
func (r *FileRule) matches(p string) bool {
	return slices.ContainsFunc(r.Paths, func(pat string) bool {
		if p == "" {
			return pat == "/**"
		}
		return MatchPath(pat, p)
	})
}

// DecideFile decides whether user may do op on target on every one of
// paths (a rename's two names, a link and what it points to). Each path is
// a normalised absolute path (CleanPath), or "" when it is not known (a
// relative path before the session's working directory is known).
//
//   - Within one role, the first rule (in file order) that applies to the
//     target and op and matches the path decides; if none does, the
//     role's CommandDefault decides ("" is allow; require-approval denies,
//     as a file operation cannot wait for an approver).
//   - An unknown path is allowed only where no rule or default that could
//     match it denies (fail closed).
//   - Across the user's roles, and across paths, the most restrictive
//     answer wins. An unknown user or target is denied.
func (p *Policy) DecideFile(user, target string, op FileOp, paths ...string) FileDecision {
	t := p.Targets[target]
	if t == nil || p.Users[user] == nil {
		return FileDecision{Action: CommandDeny, Reason: fmt.Sprintf("unknown user or target (%s on %s)", user, target)}
	}
	best := FileDecision{Action: CommandAllow}
	for _, r := range p.roles(user) {
		for _, pth := range paths {
			d := r.decideFile(t, op, pth)
			if best.Allowed() && (!d.Allowed() || best.Rule == "") {
				best = d // the first refusal, or the first rule that allowed
			}
		}
	}
	return best
}

// decideFile decides op on one path under one role.
func (r *Role) decideFile(t *Target, op FileOp, p string) FileDecision {
	shown := p
	if shown == "" {
		shown = "a relative path"
	}
	for i := range r.Files {
		rule := &r.Files[i]
		if !rule.appliesTo(t, op) {
			continue
		}
		if rule.matches(p) {
			if rule.Action == CommandAllow {
				return FileDecision{Action: CommandAllow, Rule: rule.Name}
			}
			reason := rule.Reason
			if reason == "" {
				reason = fmt.Sprintf("%s of %s: rule %s says deny", op, shown, rule.Name)
			}
			return FileDecision{Action: CommandDeny, Rule: rule.Name, Reason: reason}
		}
		if p == "" && rule.Action != CommandAllow {
			return FileDecision{Action: CommandDeny, Rule: rule.Name, Reason: fmt.Sprintf(
				"%s of a relative path cannot be checked before the working directory is known, and rule %s could deny it", op, rule.Name)}
		}
	}
	if r.CommandDefault.effective() == CommandAllow {
		return FileDecision{Action: CommandAllow}
	}
	return FileDecision{Action: CommandDeny, Reason: fmt.Sprintf("%s of %s is not allowed: no file rule of role %s allows it", op, shown, r.Name)}
}

// FilesRestricted reports whether any file operation of user on target
// could be refused: a file rule of one of the user's roles applies there,
// or a role's default is not allow. Then what cannot be checked per
// operation (legacy scp) is refused. An unknown user or target is
// restricted.
func (p *Policy) FilesRestricted(user, target string) bool {
	t := p.Targets[target]
	if t == nil || p.Users[user] == nil {
		return true
	}
	for _, r := range p.roles(user) {
		if r.CommandDefault.effective() != CommandAllow || slices.ContainsFunc(r.Files, func(f FileRule) bool { return f.onTarget(t) }) {
			return true
		}
	}
	return false
}

// FilesClosed reports whether user may do no file operation at all on
// target: one of the user's roles denies by default and has no file rule
// that applies there (command_default: deny without files: rules). The
// file transfer is then refused as a whole.
func (p *Policy) FilesClosed(user, target string) bool {
	t := p.Targets[target]
	if t == nil || p.Users[user] == nil {
		return true
	}
	for _, r := range p.roles(user) {
		if r.CommandDefault.effective() == CommandAllow {
			continue
		}
		if !slices.ContainsFunc(r.Files, func(f FileRule) bool { return f.Action == CommandAllow && f.onTarget(t) }) {
			return true
		}
	}
	return false
}

// CleanPath normalises an absolute path as the target's file system will
// read it, before symbolic links: "..", "." and repeated or trailing
// slashes are resolved ("/srv//a/../b/" is "/srv/b"; ".." of "/" is "/").
// A relative path is joined to dir first; with dir "" (not known) it is
// unknown and CleanPath returns "". A path holding a NUL byte is read
// differently by the target (it stops there) and is refused with ok false.
func CleanPath(dir, p string) (clean string, ok bool) {
	if strings.IndexByte(p, 0) >= 0 || strings.IndexByte(dir, 0) >= 0 {
		return "", false
	}
	if !strings.HasPrefix(p, "/") {
		if !strings.HasPrefix(dir, "/") {
			return "", true
		}
		p = dir + "/" + p
	}
	return path.Clean(p), true
}

// MatchPath reports whether the normalised absolute path p matches pattern.
// The pattern is split at "/" and each part matched with path.Match (so *
// and ? never match "/"), except that a part "**" matches any number of
// parts, none included: "/srv/**" matches "/srv", "/srv/a" and "/srv/a/b".
// A malformed pattern matches nothing (package config refuses them).
func MatchPath(pattern, p string) bool {
	return matchParts(strings.Split(pattern, "/"), strings.Split(p, "/"))
}

func matchParts(pat, parts []string) bool {
	for len(pat) > 0 {
		if pat[0] == "**" {
			rest := pat[1:]
			for i := 0; i <= len(parts); i++ {
				if matchParts(rest, parts[i:]) {
					return true
				}
			}
			return false
		}
		if len(parts) == 0 {
			return false
		}
		if ok, err := path.Match(pat[0], parts[0]); err != nil || !ok {
			return false
		}
		pat, parts = pat[1:], parts[1:]
	}
	return len(parts) == 0
}

// maxDoubleStars bounds the "**" parts of a path pattern: each one
// multiplies the work of matching a deep path.
const maxDoubleStars = 4

// ValidPathPattern checks a file rule's path glob: absolute, well formed,
// "**" only as a whole part. It returns the pattern normalised (repeated
// and trailing slashes, "." and ".." resolved).
func ValidPathPattern(pattern string) (string, error) {
	if !strings.HasPrefix(pattern, "/") {
		return "", fmt.Errorf("path pattern %q is not absolute (start it with /)", pattern)
	}
	clean := path.Clean(pattern)
	stars := 0
	for _, part := range strings.Split(clean, "/") {
		if part == "**" {
			if stars++; stars > maxDoubleStars {
				return "", fmt.Errorf("path pattern %q has more than %d ** parts", pattern, maxDoubleStars)
			}
			continue
		}
		if strings.Contains(part, "**") {
			return "", fmt.Errorf("path pattern %q: ** must be a whole part of the path (/srv/**/x)", pattern)
		}
		if _, err := path.Match(part, ""); err != nil {
			return "", fmt.Errorf("path pattern %q is malformed", pattern)
		}
	}
	return clean, nil
}
