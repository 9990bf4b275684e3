package transfer

// Direction says which way file contents moved.
type Direction string

// The directions of a transfer.
const (
	Upload   Direction = "upload"   // user → target
	Download Direction = "download" // target → user
)

// Ops of Events. SFTP reports the first block; scp the second.
const (
	OpOpen    = "open"    // a file was opened (SFTP); Direction says for what
	OpWrite   = "write"   // a file opened for writing was closed; Bytes written
	OpRead    = "read"    // a file opened for reading was closed; Bytes read
	OpClose   = "close"   // a file opened for neither was closed
	OpRemove  = "remove"  // Path removed
	OpRename  = "rename"  // Path renamed to NewPath
	OpMkdir   = "mkdir"   // directory Path created
	OpRmdir   = "rmdir"   // directory Path removed
	OpSetstat = "setstat" // Path's attributes (mode, owner, times, size) changed
	OpSymlink = "symlink" // symbolic link NewPath created, pointing to Path (as ln -s Path NewPath)
	OpLink    = "link"    // hard link NewPath created to Path (hardlink@openssh.com)
	OpCopy    = "copy"    // Bytes (0: to the end) copied on the target from Path to NewPath (copy-data)

	OpSCPSend    = "scp-send"    // the user sent a file to the target (scp -t): Direction upload
	OpSCPReceive = "scp-receive" // the user received a file from the target (scp -f): Direction download

	OpDecodeError = "decode-error" // decoding stopped; Error says why
)

// Event is one file operation seen in a session channel.
type Event struct {
	Op        string
	Path      string
	NewPath   string    // rename, symlink, link, copy
	Direction Direction // for file contents: upload when the user writes, download when the user reads
	Bytes     int64     // file contents moved (write, read, scp); for copy, the length asked for

	// Error is why the operation failed or may be incomplete: the target's
	// SFTP status or scp error text, an error the sending side reported, or
	// the decoder's note that the channel ended or decoding stopped first.
	Error string

	// Name is the file name an scp header carried. Path ends with it except
	// where the decoder cannot tell whether an upload's target is a
	// directory (see SCP).
	Name string

	// Truncated is set when a path was longer than MaxPath (or ran past
	// what the decoder keeps of a packet): Path or NewPath holds its start.
	Truncated bool
}

// MaxPath is the longest path an Event carries (Linux's PATH_MAX).
const MaxPath = 4096
