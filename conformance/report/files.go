package report

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// Files written by WriteDir.
const (
	JUnitFile = "junit.xml"
	JSONFile  = "report.json"
	HTMLFile  = "index.html"
)

// WriteDir writes junit.xml, report.json and index.html into dir (created if needed).
func WriteDir(dir string, run *Run) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create the report directory %s: %w", dir, err)
	}
	for name, write := range map[string]func(io.Writer, *Run) error{JUnitFile: WriteJUnit, JSONFile: WriteJSON, HTMLFile: WriteHTML} {
		if err := writeFile(filepath.Join(dir, name), func(w io.Writer) error { return write(w, run) }); err != nil {
			return err
		}
	}
	return nil
}

func writeFile(path string, write func(io.Writer) error) error {
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	bw := bufio.NewWriter(f)
	if err := write(bw); err != nil {
		f.Close()
		os.Remove(tmp)
		return err
	}
	if err := bw.Flush(); err != nil {
		f.Close()
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	return os.Rename(tmp, path)
}
