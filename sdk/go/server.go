package heddle

// The plugin process: a gRPC server on the Unix socket the worker named, running steps and
// chains of steps over objects in shared memory. Only handles cross the socket
// (proto/plugin.proto). It must never let a step's failure escape as a gRPC error: every
// failure of an invocation is an InvokeResponse with a StepError, so that the worker can tell
// a failing step from a dying plugin.

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"google.golang.org/grpc"

	"heddle.dev/sdk/internal/pb"
)

// SDKVersion is what Describe answers in `sdk`.
const SDKVersion = "heddle-sdk-go/0.1.0"

type server struct {
	pb.UnimplementedPluginServer
	steps    map[string]Step
	manifest string
}

func (s *server) Describe(context.Context, *pb.DescribeRequest) (*pb.DescribeResponse, error) {
	return &pb.DescribeResponse{ManifestJson: s.manifest, Sdk: SDKVersion}, nil
}

func (s *server) Health(context.Context, *pb.HealthRequest) (*pb.HealthResponse, error) {
	return &pb.HealthResponse{Status: "SERVING", Pid: uint32(os.Getpid())}, nil
}

type link struct {
	name   string
	step   Step
	config map[string]any
}

func (s *server) Invoke(_ context.Context, req *pb.InvokeRequest) (*pb.InvokeResponse, error) {
	names := []string{req.Step}
	configs := []string{req.ConfigJson}
	for _, then := range req.Then {
		names = append(names, then.Step)
		configs = append(configs, then.ConfigJson)
	}
	handle, errs, err := s.invoke(req, names, configs)
	if err != nil {
		f, ok := err.(*Failure)
		if !ok {
			f = &Failure{Code: "USER_CODE", Message: err.Error()}
		}
		message := f.Message
		if len(names) > 1 {
			message = fmt.Sprintf("step `%s`: %s", names[f.StepIndex], message)
		}
		fmt.Fprintf(os.Stderr, "heddle-sdk-go: %s (%s): %s\n", req.InvocationId, f.Code, message)
		return &pb.InvokeResponse{Result: &pb.InvokeResponse_Error{Error: &pb.StepError{
			Code: f.Code, Message: message, Column: f.Column, StepIndex: uint32(f.StepIndex),
		}}}, nil
	}
	return &pb.InvokeResponse{Result: &pb.InvokeResponse_Ok{Ok: &pb.InvokeOk{
		Output: handle, RowErrors: errs, StepsRun: uint32(len(names)),
	}}}, nil
}

func (s *server) invoke(req *pb.InvokeRequest, names, configs []string) (*pb.ObjectHandle, []*pb.RowError, error) {
	chain := make([]link, len(names))
	for i, name := range names {
		step, ok := s.steps[name]
		if !ok {
			known := make([]string, 0, len(s.steps))
			for n := range s.steps {
				known = append(known, "`"+n+"`")
			}
			sort.Strings(known)
			return nil, nil, &Failure{Code: "UNKNOWN_STEP", StepIndex: i,
				Message: fmt.Sprintf("no step `%s` here (known: %s)", name, strings.Join(known, ", "))}
		}
		config := map[string]any{}
		if configs[i] != "" {
			if err := json.Unmarshal([]byte(configs[i]), &config); err != nil {
				return nil, nil, &Failure{Code: "BAD_CONFIG", StepIndex: i,
					Message: fmt.Sprintf("config of `%s` is not a JSON object: %v", name, err)}
			}
		}
		chain[i] = link{name, step, config}
	}
	in := req.Input
	if in == nil {
		return nil, nil, &Failure{Code: "BAD_INPUT", Message: "the request has no input handle"}
	}
	mapped, err := mapInput(in.Segment, in.SegmentId, in.Offset, in.Length)
	if err != nil {
		return nil, nil, &Failure{Code: "BAD_INPUT", Message: fmt.Sprintf("cannot map input `%s`: %v", in.Segment, err)}
	}
	// Nothing read from the mapping may outlive it: the output is written before unmapping.
	defer mapped.close()
	schema, batches, err := readBatches(mapped.stream)
	if err != nil {
		return nil, nil, &Failure{Code: "BAD_INPUT", Message: fmt.Sprintf("input `%s`: %v", in.Segment, err)}
	}
	found, err := SchemaFingerprint(schema)
	if err != nil {
		return nil, nil, &Failure{Code: "BAD_INPUT", Message: err.Error()}
	}
	if found != in.SchemaFingerprint {
		return nil, nil, &Failure{Code: "BAD_INPUT", Message: fmt.Sprintf("input `%s` has schema fingerprint %s, the handle says %s", in.Segment, found, in.SchemaFingerprint)}
	}
	if len(batches) == 0 {
		// An input object with no batches still has a schema to answer with.
		batches = []arrow.RecordBatch{array.NewRecordBatch(schema, emptyColumns(schema), 0)}
	}
	var outs []arrow.RecordBatch
	var rowErrors []*pb.RowError
	start := uint64(0)
	for _, batch := range batches {
		out, errs, err := runChain(chain, batch)
		if err != nil {
			return nil, nil, err
		}
		if len(outs) > 0 && !out.Schema().Equal(outs[0].Schema()) {
			return nil, nil, &Failure{Code: "BAD_OUTPUT", StepIndex: len(chain) - 1,
				Message: fmt.Sprintf("step `%s` returned batches with different schemas for one input object", chain[len(chain)-1].name)}
		}
		outs = append(outs, out)
		for _, e := range errs {
			e.Row += start
			rowErrors = append(rowErrors, e)
		}
		start += uint64(batch.NumRows())
	}
	outSchema := outs[0].Schema()
	rows := uint64(0)
	nonEmpty := outs[:0:0]
	for _, b := range outs {
		rows += uint64(b.NumRows())
		if b.NumRows() > 0 {
			nonEmpty = append(nonEmpty, b)
		}
	}
	length, err := writeOutput(req.OutputSegment, outSchema, nonEmpty)
	if err != nil {
		return nil, nil, err
	}
	fingerprint, err := SchemaFingerprint(outSchema)
	if err != nil {
		return nil, nil, &Failure{Code: "BAD_OUTPUT", Message: err.Error()}
	}
	return &pb.ObjectHandle{
		Id: strings.TrimPrefix(req.OutputSegment, "/"), Segment: req.OutputSegment, Offset: 0,
		Length: uint64(length), SchemaFingerprint: fingerprint, Rows: rows,
	}, rowErrors, nil
}

func emptyColumns(schema *arrow.Schema) []arrow.Array {
	cols := make([]arrow.Array, schema.NumFields())
	for i, f := range schema.Fields() {
		cols[i] = array.MakeArrayOfNull(memory.DefaultAllocator, f.Type, 0)
	}
	return cols
}

// runChain runs batch through every step of the chain. Row errors name rows of batch
// (whichever step rejected them) so the worker quarantines the rows it sent.
func runChain(chain []link, batch arrow.RecordBatch) (arrow.RecordBatch, []*pb.RowError, error) {
	origins := make([]int, batch.NumRows())
	for i := range origins {
		origins[i] = i
	}
	known := true
	var errs []*pb.RowError
	current := batch
	for index, l := range chain {
		out, rowErrs, aligned, err := l.step.run(current, l.config)
		if err != nil {
			f, ok := err.(*Failure)
			if !ok {
				f = &Failure{Code: "USER_CODE", Message: err.Error()}
			}
			f.StepIndex = index
			return nil, nil, f
		}
		if !known && batch.NumRows() == 1 {
			// Every row of a one-row input came from that row.
			origins, known = make([]int, current.NumRows()), true
		}
		if len(rowErrs) > 0 && !known {
			return nil, nil, &Failure{Code: "ROW_ORIGIN_LOST", StepIndex: index,
				Message: fmt.Sprintf("step `%s` rejected rows of a batch whose rows an earlier step of the chain did not keep aligned with the input", l.name)}
		}
		failed := map[int]bool{}
		for _, e := range rowErrs {
			errs = append(errs, &pb.RowError{Row: uint64(origins[e.Row]), Message: e.Message, StepIndex: uint32(index)})
			failed[e.Row] = true
		}
		if aligned && known {
			kept := origins[:0:0]
			for i, o := range origins {
				if !failed[i] {
					kept = append(kept, o)
				}
			}
			origins = kept
		} else {
			known = false
		}
		current = out
	}
	return current, errs, nil
}

// serve runs the gRPC server until SIGTERM/SIGINT or until the worker is gone.
func serve(steps map[string]Step, manifest string) error {
	socket := os.Getenv("HEDDLE_PLUGIN_SOCKET")
	if socket == "" {
		return fmt.Errorf("HEDDLE_PLUGIN_SOCKET is not set; plugins are started by a Heddle worker")
	}
	listener, err := net.Listen("unix", socket)
	if err != nil {
		return fmt.Errorf("cannot listen on %s: %w", socket, err)
	}
	grpcServer := grpc.NewServer()
	pb.RegisterPluginServer(grpcServer, &server{steps: steps, manifest: manifest})
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	go watchWorker(stop)
	go func() {
		<-stop
		// An orphaned or stopped plugin must not hold its socket: finish calls, then exit.
		done := make(chan struct{})
		go func() { grpcServer.GracefulStop(); close(done) }()
		select {
		case <-done:
		case <-time.After(2 * time.Second):
			grpcServer.Stop()
		}
	}()
	return grpcServer.Serve(listener)
}

// watchWorker signals stop once HEDDLE_WORKER_PID is gone, so plugins never outlive workers.
func watchWorker(stop chan<- os.Signal) {
	var pid int
	if _, err := fmt.Sscan(os.Getenv("HEDDLE_WORKER_PID"), &pid); err != nil || pid <= 0 {
		return
	}
	for range time.Tick(time.Second) {
		if err := syscall.Kill(pid, 0); err == syscall.ESRCH {
			stop <- syscall.SIGTERM
			return
		}
	}
}
