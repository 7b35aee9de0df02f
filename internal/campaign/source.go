package campaign

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/faceidq/faceidq/internal/faceid"
	"github.com/faceidq/faceidq/tasks"
)

// Format is the format of an import.
type Format string

// Import formats.
const (
	// FormatNDJSON is one JSON token request a line (the body of POST /v1/tokens),
	// optionally with "RowKey" and, in file imports, "ImagePath".
	FormatNDJSON Format = "ndjson"
	// FormatCSV is a CSV file with a header row naming columns of CSVColumns.
	FormatCSV Format = "csv"
)

// CSVColumns are the columns a CSV import may have, in any order; the header row is
// required and redirect_url is the one required column.
//
//   - redirect_url: RedirectURL (required).
//   - extra: Extra.
//   - image_path: a file holding the raw image (JPEG/PNG bytes, not base64), relative
//     to the CSV file's directory; file imports only.
//   - image_base64: CompareImageBase64 (a Data URI header is stripped).
//   - config: Config as JSON, e.g. {"CheckMode":1}.
//   - callback_url: CallbackURL.
//   - region: Region (defaults to the server's default region).
//   - rule_id: RuleId.
//   - row_key: the caller's key of the row (at most 255 printable ASCII bytes):
//     importing the same row key again into the same campaign creates nothing.
var CSVColumns = []string{"redirect_url", "extra", "image_path", "image_base64", "config", "callback_url", "region", "rule_id", "row_key"}

// MaxLineBytes is the longest NDJSON line or CSV record accepted (an 8 MB image in
// base64 plus the rest); longer ones are rejected, and the import goes on.
const MaxLineBytes = 12 << 20

// MaxRowKeyLen is the longest row key accepted.
const MaxRowKeyLen = 255

// ErrHeader is returned (wrapped) when a CSV header cannot be used; nothing is imported.
var ErrHeader = errors.New("campaign: bad CSV header")

// row is one input row.
type row struct {
	line      int   // 1-based line number of the row's first line
	off, n    int64 // the row's bytes in the input
	rowKey    string
	req       tasks.TokenRequest
	imagePath string
	imageCol  int // CSV column of image_base64, -1 when none
	err       error
}

// rowReader reads rows; next returns io.EOF at the end and other errors only for
// input that cannot be read at all.
type rowReader interface {
	next() (*row, error)
}

// defaultRowKey is the row key of a row without one: its line number and a digest of
// its content, so that re-importing the same file finds the same keys, while an edited
// line becomes a new job.
func defaultRowKey(line int, content []byte) string {
	sum := sha256.Sum256(content)
	return "L" + strconv.Itoa(line) + ":" + hex.EncodeToString(sum[:8])
}

func checkRowKey(k string) error {
	if len(k) > MaxRowKeyLen {
		return &faceid.FieldError{Code: faceid.CodeInvalidParameterValue, Field: "row_key",
			Reason: fmt.Sprintf("is %d bytes long; at most %d", len(k), MaxRowKeyLen)}
	}
	for i := 0; i < len(k); i++ {
		if k[i] < 0x20 || k[i] > 0x7e {
			return &faceid.FieldError{Code: faceid.CodeInvalidParameter, Field: "row_key", Reason: "must be printable ASCII"}
		}
	}
	return nil
}

// ndjsonLine is one NDJSON line: a token request plus the row's own fields.
type ndjsonLine struct {
	tasks.TokenRequest
	RowKey    string `json:"RowKey,omitempty"`
	ImagePath string `json:"ImagePath,omitempty"`
}

type ndjsonReader struct {
	br   *bufio.Reader
	line int
	off  int64
	buf  []byte
}

func newNDJSONReader(r io.Reader) *ndjsonReader {
	return &ndjsonReader{br: bufio.NewReaderSize(r, 256<<10)}
}

// readLine returns the next line without its end, and whether it was too long (its
// bytes are then discarded).
func (r *ndjsonReader) readLine() (b []byte, tooLong bool, err error) {
	r.buf = r.buf[:0]
	for {
		chunk, err := r.br.ReadSlice('\n')
		r.off += int64(len(chunk))
		if !tooLong {
			if len(r.buf)+len(chunk) > MaxLineBytes+2 {
				tooLong, r.buf = true, r.buf[:0]
			} else {
				r.buf = append(r.buf, chunk...)
			}
		}
		switch {
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF):
			if len(r.buf) == 0 && !tooLong {
				return nil, false, io.EOF
			}
		case err != nil:
			return nil, false, fmt.Errorf("campaign: read line %d: %w", r.line+1, err)
		}
		return bytes.TrimRight(r.buf, "\r\n"), tooLong, nil
	}
}

func (r *ndjsonReader) next() (*row, error) {
	for {
		start := r.off
		b, tooLong, err := r.readLine()
		if err != nil {
			return nil, err
		}
		r.line++
		if r.line == 1 {
			b = bytes.TrimPrefix(b, []byte("\ufeff")) // a UTF-8 byte order mark
		}
		rw := &row{line: r.line, off: start, n: r.off - start, imageCol: -1}
		if tooLong {
			rw.err = &faceid.FieldError{Code: faceid.CodeInvalidParameterValue, Field: "line",
				Reason: fmt.Sprintf("is longer than %d bytes", MaxLineBytes)}
			return rw, nil
		}
		if len(bytes.TrimSpace(b)) == 0 {
			continue // blank lines are allowed (e.g. a trailing newline)
		}
		var l ndjsonLine
		if err := tasks.DecodeStrict(b, &l); err != nil {
			rw.err = lineErr(err)
			return rw, nil
		}
		rw.req, rw.imagePath, rw.rowKey = l.TokenRequest, l.ImagePath, l.RowKey
		if rw.rowKey == "" {
			rw.rowKey = defaultRowKey(rw.line, b)
		} else if err := checkRowKey(rw.rowKey); err != nil {
			rw.err = err
		}
		return rw, nil
	}
}

// lineErr words a decoding error of one NDJSON line: the decoder names the input as
// a whole "body", a row calls it "line".
func lineErr(err error) error {
	var fe *faceid.FieldError
	if errors.As(err, &fe) && fe.Field == "body" {
		return &faceid.FieldError{Code: fe.Code, Field: "line", Reason: fe.Reason}
	}
	return err
}

// configErr words a decoding error of a CSV config cell on its column.
func configErr(err error) error {
	var fe *faceid.FieldError
	if !errors.As(err, &fe) {
		return err
	}
	reason := fe.Reason
	if fe.Field != "Config" {
		reason = fe.Field + ": " + reason
	}
	return &faceid.FieldError{Code: fe.Code, Field: "config", Reason: reason}
}

type csvReader struct {
	cr   *csv.Reader
	col  map[string]int
	prev int64
}

func newCSVReader(r io.Reader) (*csvReader, error) {
	cr := csv.NewReader(bufio.NewReaderSize(r, 256<<10))
	cr.ReuseRecord = true
	head, err := cr.Read()
	if errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%w: the file is empty (a header row is required)", ErrHeader)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrHeader, err)
	}
	c := &csvReader{cr: cr, col: map[string]int{}, prev: cr.InputOffset()}
	known := map[string]bool{}
	for _, k := range CSVColumns {
		known[k] = true
	}
	for i, h := range head {
		h = strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")))
		if !known[h] {
			return nil, fmt.Errorf("%w: unknown column %q (columns: %s)", ErrHeader, h, strings.Join(CSVColumns, ", "))
		}
		if _, dup := c.col[h]; dup {
			return nil, fmt.Errorf("%w: column %q appears twice", ErrHeader, h)
		}
		c.col[h] = i
	}
	if _, ok := c.col["redirect_url"]; !ok {
		return nil, fmt.Errorf("%w: the redirect_url column is required", ErrHeader)
	}
	cr.FieldsPerRecord = len(head)
	return c, nil
}

func (c *csvReader) next() (*row, error) {
	rec, err := c.cr.Read()
	start, end := c.prev, c.cr.InputOffset()
	c.prev = end
	if errors.Is(err, io.EOF) {
		return nil, io.EOF
	}
	rw := &row{off: start, n: end - start, imageCol: -1}
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		rw.line = pe.StartLine
		rw.err = &faceid.FieldError{Code: faceid.CodeInvalidParameter, Field: "line", Reason: pe.Err.Error()}
		return rw, nil
	}
	if err != nil {
		return nil, fmt.Errorf("campaign: read CSV: %w", err)
	}
	rw.line, _ = c.cr.FieldPos(0)
	if end-start > MaxLineBytes {
		rw.err = &faceid.FieldError{Code: faceid.CodeInvalidParameterValue, Field: "line",
			Reason: fmt.Sprintf("is longer than %d bytes", MaxLineBytes)}
		return rw, nil
	}
	for _, v := range rec {
		if !utf8.ValidString(v) { // as DecodeTokenRequest refuses it in JSON
			rw.err = &faceid.FieldError{Code: faceid.CodeInvalidParameter, Field: "line", Reason: "is not valid UTF-8"}
			return rw, nil
		}
	}
	get := func(name string) string {
		if i, ok := c.col[name]; ok {
			return rec[i]
		}
		return ""
	}
	opt := func(name string) *string {
		if v := get(name); v != "" {
			return &v
		}
		return nil
	}
	r := &rw.req
	r.RedirectURL, r.Extra, r.RuleId = opt("redirect_url"), opt("extra"), opt("rule_id")
	r.CompareImageBase64 = opt("image_base64")
	if r.CompareImageBase64 != nil {
		rw.imageCol = c.col["image_base64"]
	}
	r.Region, r.CallbackURL = get("region"), get("callback_url")
	rw.imagePath = get("image_path")
	if cfg := get("config"); cfg != "" {
		wc, err := tasks.DecodeConfig([]byte(cfg))
		if err != nil {
			rw.err = configErr(err)
			return rw, nil
		}
		r.Config = wc
	}
	if rw.rowKey = get("row_key"); rw.rowKey == "" {
		rw.rowKey = defaultRowKey(rw.line, []byte(strings.Join(rec, "\x1f")))
	} else if err := checkRowKey(rw.rowKey); err != nil {
		rw.err = err
	}
	return rw, nil
}
