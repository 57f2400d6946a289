//go:build linux

package embedded

import (
	"bufio"
	"bytes"
	"errors"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// releaseMapped drops the pages of the file at path from this process's
// page tables (madvise MADV_DONTNEED over its read-only shared mapping).
// The pages stay in the kernel's page cache and fault back in on the next
// read, so nothing changes for readers; the process's resident set no
// longer grows with the history it has touched.
//
// It must run while bbolt cannot remap the file (inside a write
// transaction): the range read from /proc/self/maps is then still bbolt's.
func releaseMapped(path string) error {
	f, err := os.Open("/proc/self/maps")
	if err != nil {
		return err
	}
	defer f.Close()
	var errs []error
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Bytes()
		if !bytes.HasSuffix(line, []byte(" "+path)) {
			continue
		}
		fields := bytes.Fields(line)
		if len(fields) < 2 || !bytes.HasPrefix(fields[1], []byte("r")) || bytes.Contains(fields[1], []byte("w")) {
			continue // only bbolt's read-only shared mapping
		}
		lo, hi, ok := bytes.Cut(fields[0], []byte("-"))
		if !ok {
			continue
		}
		start, err1 := strconv.ParseUint(string(lo), 16, 64)
		end, err2 := strconv.ParseUint(string(hi), 16, 64)
		if err1 != nil || err2 != nil || end <= start {
			continue
		}
		// A raw syscall on the numeric range: no Go pointer is made.
		if _, _, e := unix.Syscall(unix.SYS_MADVISE, uintptr(start), uintptr(end-start), unix.MADV_DONTNEED); e != 0 {
			errs = append(errs, e)
		}
	}
	return errors.Join(append(errs, sc.Err())...)
}
