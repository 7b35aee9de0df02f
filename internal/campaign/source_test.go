package campaign

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/faceidq/faceidq/internal/faceid"
)

// readAll reads every row of data in format, checking the invariants every reader
// keeps: rows come in line order, their bytes lie within the input, and the image
// source recorded for a row gives back the row's own image.
func readAll(t *testing.T, format Format, data string) []*row {
	t.Helper()
	path := filepath.Join(t.TempDir(), "in")
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	var rr rowReader
	if format == FormatCSV {
		c, err := newCSVReader(strings.NewReader(data))
		if err != nil {
			if !errors.Is(err, ErrHeader) {
				t.Fatalf("header error not wrapping ErrHeader: %v", err)
			}
			return nil
		}
		rr = c
	} else {
		rr = newNDJSONReader(strings.NewReader(data))
	}
	im := &importer{opts: ImportOptions{Format: format, file: path}}
	var rows []*row
	last := 0
	for {
		rw, err := rr.next()
		if errors.Is(err, io.EOF) {
			return rows
		}
		if err != nil {
			return rows // an unreadable input ends the import with an error
		}
		if rw.line < last || rw.off < 0 || rw.off+rw.n > int64(len(data)) {
			t.Fatalf("row at line %d (after %d), bytes [%d,+%d) of %d", rw.line, last, rw.off, rw.n, len(data))
		}
		last = rw.line
		if rw.err == nil && rw.req.CompareImageBase64 != nil {
			src := im.imageSource(rw)
			img, err := loadImage(src)
			want, _ := faceid.StripDataURI(*rw.req.CompareImageBase64)
			if err != nil || img != want {
				t.Fatalf("line %d: image source %q gives %q, %v; want %q", rw.line, src, img, err, want)
			}
		}
		rows = append(rows, rw)
	}
}

func TestReaders(t *testing.T) {
	tests := []struct {
		name      string
		format    Format
		data      string
		wantLines []int
		wantBad   []int
	}{
		{"ndjson with blank and bad lines", FormatNDJSON,
			"\ufeff{\"RedirectURL\":\"https://a\",\"CompareImageBase64\":\"QUJD\"}\n\n{bad\n{\"RedirectURL\":\"https://b\",\"CompareImageBase64\":\"QUJD\"}\r\n{\"RedirectURL\":\"https://c\"}",
			[]int{1, 3, 4, 5}, []int{3}},
		{"csv with quotes, multi-line field and bad count", FormatCSV,
			"\ufeffRedirect_URL,extra,image_base64,row_key\nhttps://a,\"x\ny\",QUJD,k1\nhttps://b,z\nhttps://c,\"q,\"\"r\"\"\",,k3\n",
			[]int{2, 4, 5}, []int{4}},
		{"ndjson unknown field and trailing data", FormatNDJSON,
			"{\"RedirectURL\":\"https://a\",\"CompareImage\":\"QUJD\"}\n{\"RedirectURL\":\"https://b\"} {}\n{\"RedirectURL\":\"https://c\",\"RowKey\":\"k\"}\n",
			[]int{1, 2, 3}, []int{1, 2}},
		{"ndjson invalid UTF-8", FormatNDJSON,
			"{\"RedirectURL\":\"https://a\",\"Extra\":\"\xc3\x28\"}\n{\"RedirectURL\":\"https://b\",\"Extra\":\"é\"}\n",
			[]int{1, 2}, []int{1}},
		{"csv bad row key", FormatCSV, "redirect_url,row_key\nhttps://a,\"a\tb\"\n", []int{2}, []int{2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rows := readAll(t, tt.format, tt.data)
			var lines, bad []int
			for _, r := range rows {
				lines = append(lines, r.line)
				if r.err != nil {
					bad = append(bad, r.line)
				}
			}
			if !equal(lines, tt.wantLines) || !equal(bad, tt.wantBad) {
				t.Fatalf("lines %v (bad %v), want %v (bad %v)", lines, bad, tt.wantLines, tt.wantBad)
			}
		})
	}
}

func TestDefaultRowKey(t *testing.T) {
	a, b := defaultRowKey(3, []byte("x")), defaultRowKey(3, []byte("y"))
	if a == b || a != defaultRowKey(3, []byte("x")) || a == defaultRowKey(4, []byte("x")) || !strings.HasPrefix(a, "L3:") || checkRowKey(a) != nil {
		t.Fatalf("keys %q %q", a, b)
	}
}

func equal(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func FuzzNDJSONReader(f *testing.F) {
	f.Add("{\"RedirectURL\":\"https://a\",\"CompareImageBase64\":\"data:image/png;base64,QUJD\"}\n{}\n")
	f.Add("\n\n{\"RowKey\":\"\\u0000\"}")
	f.Fuzz(func(t *testing.T, data string) { readAll(t, FormatNDJSON, data) })
}

func FuzzCSVReader(f *testing.F) {
	f.Add("redirect_url,image_base64,config\nhttps://a,QUJD,\"{\"\"CheckMode\"\":1}\"\n")
	f.Add("redirect_url,image_base64\n\"https://a\nb\",\"QU\nJD\"\n")
	f.Fuzz(func(t *testing.T, data string) { readAll(t, FormatCSV, data) })
}
