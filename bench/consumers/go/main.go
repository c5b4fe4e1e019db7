// The Go consumer process of the handoff benchmark, twin of bench/_handoff_consumer.ts and
// .py: it speaks the framing of bench/_wire.ts on a Unix socket (Heddle handles mapped
// zero-copy with the Go SDK's OpenHandle, or Arrow IPC bytes) and serves JSON rows over HTTP,
// and replies with the checksum of every value it read (bench/_transactions.ts defines it).
// It must never reply with anything it did not compute from the data it received.
package main

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"runtime"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	heddle "heddle.dev/sdk"
)

type checksum struct {
	Rows      int     `json:"rows"`
	Ints      uint32  `json:"ints"`
	Amount    float64 `json:"amount"`
	TextBytes int     `json:"textBytes"`
	TextSum   uint32  `json:"textSum"`
}

// sumWords adds every 32-bit word of an int64 column, as the TypeScript consumer reads it.
func sumWords(col arrow.Array, acc uint32) uint32 {
	for _, v := range col.(*array.Int64).Int64Values() {
		acc += uint32(uint64(v)) + uint32(uint64(v)>>32)
	}
	return acc
}

func checksumBatches(batches []arrow.RecordBatch) checksum {
	var c checksum
	for _, b := range batches {
		col := func(name string) arrow.Array { return b.Column(b.Schema().FieldIndices(name)[0]) }
		c.Rows += int(b.NumRows())
		c.Ints = sumWords(col("tx_id"), c.Ints)
		c.Ints = sumWords(col("ts"), c.Ints)
		for _, v := range col("user_id").(*array.Int32).Int32Values() {
			c.Ints += uint32(v)
		}
		for _, v := range col("amount").(*array.Float64).Float64Values() {
			c.Amount += v
		}
		m := col("merchant").(*array.String)
		offsets := m.ValueOffsets()
		text := m.ValueBytes()
		c.TextBytes += int(offsets[len(offsets)-1] - offsets[0])
		for _, x := range text[offsets[0]:offsets[len(offsets)-1]] {
			c.TextSum += uint32(x)
		}
	}
	return c
}

func rowsOf(batches []arrow.RecordBatch) int {
	n := 0
	for _, b := range batches {
		n += int(b.NumRows())
	}
	return n
}

func reply(c checksum, read bool) map[string]any {
	if !read {
		return map[string]any{"rows": c.Rows}
	}
	return map[string]any{"rows": c.Rows, "ints": c.Ints, "amount": c.Amount, "textBytes": c.TextBytes, "textSum": c.TextSum}
}

func ms(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e6 }

// serveHandle maps a handle (and with `R` reads every value), timing each part.
func serveHandle(kind byte, payload []byte) (map[string]any, error) {
	var h struct {
		Segment   string `json:"segment"`
		SegmentID string `json:"segmentId"`
		Offset    uint64 `json:"offset"`
		Length    uint64 `json:"length"`
	}
	if err := json.Unmarshal(payload, &h); err != nil {
		return nil, err
	}
	t0 := time.Now() // the handle has arrived: the transport's decoding is done
	in, err := heddle.OpenHandle(heddle.Handle{Segment: h.Segment, SegmentID: h.SegmentID, Offset: h.Offset, Length: h.Length})
	if err != nil {
		return nil, err
	}
	defer in.Close()
	t1 := time.Now()
	var out map[string]any
	if kind == 'R' {
		out = reply(checksumBatches(in.Batches), true)
	} else {
		out = map[string]any{"rows": rowsOf(in.Batches)}
	}
	out["mapMs"], out["readMs"] = ms(t1.Sub(t0)), ms(time.Since(t1))
	return out, nil
}

func serveIPC(kind byte, payload []byte) (map[string]any, error) {
	// A message may be as large as the frame (arrow-go's default limit is 256 MiB).
	reader, err := ipc.NewReader(bytes.NewReader(payload), ipc.WithBodySizeLimit(int64(len(payload))))
	if err != nil {
		return nil, err
	}
	defer reader.Release()
	var batches []arrow.RecordBatch
	for reader.Next() {
		b := reader.RecordBatch()
		b.Retain()
		batches = append(batches, b)
	}
	defer func() {
		for _, b := range batches {
			b.Release()
		}
	}()
	if err := reader.Err(); err != nil {
		return nil, err
	}
	if kind == 'A' {
		return reply(checksumBatches(batches), true), nil
	}
	return map[string]any{"rows": rowsOf(batches)}, nil
}

func serveSocket(conn net.Conn) error {
	defer conn.Close()
	in := bufio.NewReaderSize(conn, 1<<16)
	header := make([]byte, 9)
	for {
		if _, err := io.ReadFull(in, header); err != nil {
			return nil // end of stream
		}
		length := binary.LittleEndian.Uint64(header[1:])
		if length > math.MaxInt32*8 {
			return fmt.Errorf("frame of %d bytes is too large", length)
		}
		payload := make([]byte, length)
		if _, err := io.ReadFull(in, payload); err != nil {
			return err
		}
		t0 := time.Now()
		var out map[string]any
		var err error
		if header[0] == 'A' || header[0] == 'B' {
			out, err = serveIPC(header[0], payload)
		} else {
			out, err = serveHandle(header[0], payload)
		}
		if err != nil {
			return err
		}
		// Everything from the frame's arrival to the reply, unmapping included.
		out["serveMs"] = ms(time.Since(t0))
		line, _ := json.Marshal(out)
		if _, err := conn.Write(append(line, '\n')); err != nil {
			return err
		}
		// As the TypeScript consumer does: one measurement's garbage (a 1 GB IPC payload) is
		// collected before the next measurement starts, never inside its timing.
		payload, out = nil, nil
		runtime.GC()
	}
}

type txRow struct {
	TxID     int64   `json:"tx_id"`
	UserID   int64   `json:"user_id"`
	Amount   float64 `json:"amount"`
	Merchant string  `json:"merchant"`
	TS       int64   `json:"ts"`
}

func serveJSON(w http.ResponseWriter, r *http.Request) {
	var rows []txRow
	if err := json.NewDecoder(r.Body).Decode(&rows); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	c := checksum{Rows: len(rows)}
	for _, row := range rows {
		c.Ints += uint32(uint64(row.TxID)) + uint32(uint64(row.TxID)>>32) +
			uint32(uint64(row.TS)) + uint32(uint64(row.TS)>>32) + uint32(row.UserID)
		c.Amount += row.Amount
		c.TextBytes += len(row.Merchant)
		for i := 0; i < len(row.Merchant); i++ {
			c.TextSum += uint32(row.Merchant[i])
		}
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(reply(c, r.URL.Query().Get("read") == "1"))
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: handoff-consumer SOCKET")
		os.Exit(2)
	}
	httpListener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	go func() { _ = http.Serve(httpListener, http.HandlerFunc(serveJSON)) }()
	listener, err := net.Listen("unix", os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Printf("{\"http\":%d}\n", httpListener.Addr().(*net.TCPAddr).Port)
	for {
		conn, err := listener.Accept()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		go func() {
			if err := serveSocket(conn); err != nil {
				fmt.Fprintln(os.Stderr, "handoff consumer:", err)
				os.Exit(1)
			}
		}()
	}
}
