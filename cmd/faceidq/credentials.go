package main

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/faceidq/faceidq/internal/faceid"
)

// upstreamSet is one credential set the worker calls the upstream with: a client's
// configuration and the regions it serves (none: every region).
type upstreamSet struct {
	faceid.Config
	Regions []string
}

// credentialEntry is one entry of the FACEIDQ_CREDENTIALS file.
type credentialEntry struct {
	SecretId      string
	SecretKey     string
	SecretKeyFile string
	Endpoint      string
	Regions       []string
}

// privateMode is the permission bits a credentials file must not have: any access
// by group or others.
const privateMode fs.FileMode = 0o077

// readPrivate reads the file at path, refusing one that others may read.
func readPrivate(path string) ([]byte, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if perm := st.Mode().Perm(); perm&privateMode != 0 {
		return nil, fmt.Errorf("%s has mode %04o: it holds secrets, so it must be 0600 or stricter (chmod 600 %s)", path, perm, path)
	}
	return os.ReadFile(path)
}

// loadCredentials reads the FACEIDQ_CREDENTIALS file at path: a JSON array of
// credential sets, each with SecretId, SecretKey or SecretKeyFile, an optional
// Endpoint (default endpoint) and optional Regions (default every region). An
// error names the file or the entry (counted from 0) and never shows a key.
func loadCredentials(path, endpoint string) ([]upstreamSet, error) {
	b, err := readPrivate(path)
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var entries []credentialEntry
	if err := dec.Decode(&entries); err != nil {
		var ute *json.UnmarshalTypeError
		if errors.As(err, &ute) {
			return nil, fmt.Errorf("%s: not an array of credential sets: %s has the wrong type", path, cmp.Or(ute.Field, "the value"))
		}
		return nil, fmt.Errorf("%s: not a JSON array of credential sets: %v", path, err)
	}
	if len(entries) == 0 {
		return nil, fmt.Errorf("%s holds no credential set", path)
	}
	sets := make([]upstreamSet, 0, len(entries))
	seen := map[string]int{}
	for i, e := range entries {
		s, err := e.set(endpoint)
		if err != nil {
			return nil, fmt.Errorf("entry %d: %w", i, err)
		}
		c, err := faceid.New(s.Config)
		if err != nil {
			return nil, fmt.Errorf("entry %d: %s", i, strings.TrimPrefix(err.Error(), "faceid: new client: "))
		}
		budget := c.Account() + " " + c.Endpoint()
		if j, ok := seen[budget]; ok {
			return nil, fmt.Errorf("entry %d: the same SecretId and Endpoint as entry %d (one budget listed twice)", i, j)
		}
		seen[budget] = i
		sets = append(sets, s)
	}
	return sets, nil
}

// set validates e and reads its key.
func (e credentialEntry) set(endpoint string) (upstreamSet, error) {
	s := upstreamSet{Config: faceid.Config{SecretID: e.SecretId, Endpoint: cmp.Or(e.Endpoint, endpoint)}, Regions: e.Regions}
	switch {
	case e.SecretId == "":
		return s, errors.New("SecretId is required")
	case e.SecretKey == "" && e.SecretKeyFile == "":
		return s, errors.New("SecretKey or SecretKeyFile is required")
	case e.SecretKey != "" && e.SecretKeyFile != "":
		return s, errors.New("give SecretKey or SecretKeyFile, not both")
	case e.SecretKey != "":
		s.SecretKey = e.SecretKey
	default:
		b, err := readPrivate(e.SecretKeyFile)
		if err != nil {
			return s, fmt.Errorf("SecretKeyFile: %w", err)
		}
		s.SecretKey = strings.TrimRight(string(b), "\r\n")
		if s.SecretKey == "" {
			return s, fmt.Errorf("SecretKeyFile: %s is empty", e.SecretKeyFile)
		}
	}
	for _, r := range e.Regions {
		if !faceid.ValidRegion(r) {
			return s, fmt.Errorf("Regions: %q is not a region: one of %v", r, faceid.Regions)
		}
	}
	return s, nil
}
