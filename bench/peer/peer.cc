// The benchmark peer: the Rides service (Start, Track) and the interop
// grpc.testing.TestService (UnaryCall, StreamingInputCall,
// StreamingOutputCall; the others answer UNIMPLEMENTED) on gRPC C++,
// with TLS, for bench/run to measure rpchost against.
//
//   bench-peer --listen 127.0.0.1:PORT --cert PEM --key PEM
//              [--api async|callback] [--threads N]
//
// --api async (default) is the completion-queue API with one queue and one
// polling thread per CPU the process may run on (what gRPC's own qps
// benchmark calls the async server); --api callback is the reactor API,
// whose threads gRPC sizes itself. Neither stores anything. It prints
// "listening on PORT" once it serves, and stops on SIGTERM or SIGINT.
#include <grpcpp/grpcpp.h>
#include <grpcpp/security/server_credentials.h>
#include <sched.h>
#include <signal.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "grpc/testing/test.grpc.pb.h"
#include "rides.grpc.pb.h"
#include "rides_logic.h"

using grpc::Status;
using grpc::StatusCode;
using grpc::testing::SimpleRequest;
using grpc::testing::SimpleResponse;
using grpc::testing::StreamingInputCallRequest;
using grpc::testing::StreamingInputCallResponse;
using grpc::testing::StreamingOutputCallRequest;
using grpc::testing::StreamingOutputCallResponse;

namespace {

// ---- work shared by both APIs ------------------------------------------

Status do_start(const StartRequest &req, StartResponse *resp) {
  std::string err = peer::validate_start(req);
  if (!err.empty()) return Status(StatusCode::INVALID_ARGUMENT, err);
  if (peer::new_ride_id(resp->mutable_id()) < 0)
    return Status(StatusCode::UNAVAILABLE, "no random bytes from the kernel");
  return Status::OK;
}

Status do_unary_call(const SimpleRequest &req, SimpleResponse *resp) {
  if (req.has_response_status() && req.response_status().code() != 0)
    return Status(static_cast<StatusCode>(req.response_status().code()),
                  req.response_status().message());
  if (req.response_size() < 0) return Status(StatusCode::INVALID_ARGUMENT, "response_size is negative");
  if (req.response_size() > 0) {
    resp->mutable_payload()->set_type(grpc::testing::COMPRESSABLE);
    resp->mutable_payload()->mutable_body()->assign(static_cast<size_t>(req.response_size()), '\0');
  }
  return Status::OK;
}

// CompressedResponse (interop): response_compressed asks for the call's
// response to be compressed, per call, as gRPC C++ does it
// (set_compression_algorithm). gzip unless the client names deflate in
// x-response-compression (the benchmark's deflate runs).
void apply_compression(grpc::ServerContextBase *ctx, const SimpleRequest &req) {
  if (!req.has_response_compressed() || !req.response_compressed().value()) return;
  grpc_compression_algorithm algo = GRPC_COMPRESS_GZIP;
  auto md = ctx->client_metadata();
  auto it = md.find("x-response-compression");
  if (it != md.end() && it->second == "deflate") algo = GRPC_COMPRESS_DEFLATE;
  ctx->set_compression_algorithm(algo);
}

// Fills resp for response i of a StreamingOutputCall; false if invalid.
bool fill_stream_response(const StreamingOutputCallRequest &req, int i,
                          StreamingOutputCallResponse *resp) {
  int size = req.response_parameters(i).size();
  if (size < 0) return false;
  auto *body = resp->mutable_payload()->mutable_body();
  if (body->size() != static_cast<size_t>(size)) body->assign(static_cast<size_t>(size), '\0');
  return true;
}

// ---- callback (reactor) API --------------------------------------------

class RidesCallback final : public Rides::CallbackService {
  grpc::ServerUnaryReactor *Start(grpc::CallbackServerContext *ctx, const StartRequest *req,
                                  StartResponse *resp) override {
    auto *r = ctx->DefaultReactor();
    r->Finish(do_start(*req, resp));
    return r;
  }

  class TrackReader final : public grpc::ServerReadReactor<TrackRequest> {
   public:
    explicit TrackReader(TrackResponse *resp) : resp_(resp) { StartRead(&msg_); }
    void OnReadDone(bool ok) override {
      if (!ok) {
        resp_->set_count(count_);
        Finish(Status::OK);
        return;
      }
      std::string err = peer::validate_track_point(msg_, count_);
      if (!err.empty()) {
        Finish(Status(StatusCode::INVALID_ARGUMENT, err));
        return;
      }
      count_++;
      StartRead(&msg_);
    }
    void OnDone() override { delete this; }

   private:
    TrackResponse *resp_;
    TrackRequest msg_;
    uint64_t count_ = 0;
  };

  grpc::ServerReadReactor<TrackRequest> *Track(grpc::CallbackServerContext *,
                                               TrackResponse *resp) override {
    return new TrackReader(resp);
  }
};

class TestCallback final : public grpc::testing::TestService::CallbackService {
  grpc::ServerUnaryReactor *UnaryCall(grpc::CallbackServerContext *ctx, const SimpleRequest *req,
                                      SimpleResponse *resp) override {
    auto *r = ctx->DefaultReactor();
    apply_compression(ctx, *req);
    r->Finish(do_unary_call(*req, resp));
    return r;
  }

  class Writer final : public grpc::ServerWriteReactor<StreamingOutputCallResponse> {
   public:
    explicit Writer(const StreamingOutputCallRequest *req) : req_(req) { Next(); }
    void OnWriteDone(bool ok) override {
      if (!ok) {
        Finish(Status(StatusCode::CANCELLED, "write failed"));
        return;
      }
      Next();
    }
    void OnDone() override { delete this; }

   private:
    void Next() {
      if (i_ == req_->response_parameters_size()) {
        Finish(Status::OK);
        return;
      }
      if (!fill_stream_response(*req_, i_, &resp_)) {
        Finish(Status(StatusCode::INVALID_ARGUMENT, "response_parameters.size is negative"));
        return;
      }
      i_++;
      if (i_ == req_->response_parameters_size())
        StartWriteLast(&resp_, grpc::WriteOptions());
      else
        StartWrite(&resp_);
    }
    const StreamingOutputCallRequest *req_;
    StreamingOutputCallResponse resp_;
    int i_ = 0;
  };

  grpc::ServerWriteReactor<StreamingOutputCallResponse> *StreamingOutputCall(
      grpc::CallbackServerContext *, const StreamingOutputCallRequest *req) override {
    return new Writer(req);
  }

  class InputReader final : public grpc::ServerReadReactor<StreamingInputCallRequest> {
   public:
    explicit InputReader(StreamingInputCallResponse *resp) : resp_(resp) { StartRead(&msg_); }
    void OnReadDone(bool ok) override {
      if (!ok) {
        if (sum_ > INT32_MAX) {
          Finish(Status(StatusCode::INVALID_ARGUMENT, "aggregated payload size does not fit int32"));
          return;
        }
        resp_->set_aggregated_payload_size(static_cast<int32_t>(sum_));
        Finish(Status::OK);
        return;
      }
      sum_ += msg_.payload().body().size();
      StartRead(&msg_);
    }
    void OnDone() override { delete this; }

   private:
    StreamingInputCallResponse *resp_;
    StreamingInputCallRequest msg_;
    int64_t sum_ = 0;
  };

  grpc::ServerReadReactor<StreamingInputCallRequest> *StreamingInputCall(
      grpc::CallbackServerContext *, StreamingInputCallResponse *resp) override {
    return new InputReader(resp);
  }
};

// ---- async (completion queue) API --------------------------------------

struct Tag {
  virtual ~Tag() = default;
  virtual void Proceed(bool ok) = 0;
};

struct AsyncEnv {
  Rides::AsyncService *rides;
  grpc::testing::TestService::AsyncService *test;
  grpc::ServerCompletionQueue *cq;
};

class StartCall final : public Tag {
 public:
  explicit StartCall(AsyncEnv env) : env_(env), responder_(&ctx_) {
    env_.rides->RequestStart(&ctx_, &req_, &responder_, env_.cq, env_.cq, this);
  }
  void Proceed(bool ok) override {
    if (!ok || finishing_) {
      delete this;
      return;
    }
    new StartCall(env_);
    finishing_ = true;
    Status st = do_start(req_, &resp_);
    if (st.ok())
      responder_.Finish(resp_, st, this);
    else
      responder_.FinishWithError(st, this);
  }

 private:
  AsyncEnv env_;
  grpc::ServerContext ctx_;
  StartRequest req_;
  StartResponse resp_;
  grpc::ServerAsyncResponseWriter<StartResponse> responder_;
  bool finishing_ = false;
};

class UnaryCallCall final : public Tag {
 public:
  explicit UnaryCallCall(AsyncEnv env) : env_(env), responder_(&ctx_) {
    env_.test->RequestUnaryCall(&ctx_, &req_, &responder_, env_.cq, env_.cq, this);
  }
  void Proceed(bool ok) override {
    if (!ok || finishing_) {
      delete this;
      return;
    }
    new UnaryCallCall(env_);
    finishing_ = true;
    apply_compression(&ctx_, req_);
    Status st = do_unary_call(req_, &resp_);
    if (st.ok())
      responder_.Finish(resp_, st, this);
    else
      responder_.FinishWithError(st, this);
  }

 private:
  AsyncEnv env_;
  grpc::ServerContext ctx_;
  SimpleRequest req_;
  SimpleResponse resp_;
  grpc::ServerAsyncResponseWriter<SimpleResponse> responder_;
  bool finishing_ = false;
};

class TrackCall final : public Tag {
 public:
  explicit TrackCall(AsyncEnv env) : env_(env), reader_(&ctx_) {
    env_.rides->RequestTrack(&ctx_, &reader_, env_.cq, env_.cq, this);
  }
  void Proceed(bool ok) override {
    switch (state_) {
      case State::kRequested:
        if (!ok) {
          delete this;
          return;
        }
        new TrackCall(env_);
        state_ = State::kReading;
        reader_.Read(&msg_, this);
        return;
      case State::kReading:
        if (!ok) {  // the client half-closed
          resp_.set_count(count_);
          state_ = State::kFinishing;
          reader_.Finish(resp_, Status::OK, this);
          return;
        }
        {
          std::string err = peer::validate_track_point(msg_, count_);
          if (!err.empty()) {
            state_ = State::kFinishing;
            reader_.FinishWithError(Status(StatusCode::INVALID_ARGUMENT, err), this);
            return;
          }
        }
        count_++;
        reader_.Read(&msg_, this);
        return;
      case State::kFinishing:
        delete this;
        return;
    }
  }

 private:
  enum class State { kRequested, kReading, kFinishing };
  AsyncEnv env_;
  grpc::ServerContext ctx_;
  grpc::ServerAsyncReader<TrackResponse, TrackRequest> reader_;
  TrackRequest msg_;
  TrackResponse resp_;
  uint64_t count_ = 0;
  State state_ = State::kRequested;
};

class StreamInCall final : public Tag {
 public:
  explicit StreamInCall(AsyncEnv env) : env_(env), reader_(&ctx_) {
    env_.test->RequestStreamingInputCall(&ctx_, &reader_, env_.cq, env_.cq, this);
  }
  void Proceed(bool ok) override {
    if (finishing_) {
      delete this;
      return;
    }
    if (!requested_) {
      if (!ok) {
        delete this;
        return;
      }
      requested_ = true;
      new StreamInCall(env_);
    } else if (!ok) {  // the client half-closed
      finishing_ = true;
      if (sum_ > INT32_MAX) {
        reader_.FinishWithError(
            Status(StatusCode::INVALID_ARGUMENT, "aggregated payload size does not fit int32"), this);
        return;
      }
      resp_.set_aggregated_payload_size(static_cast<int32_t>(sum_));
      reader_.Finish(resp_, Status::OK, this);
      return;
    } else {
      sum_ += msg_.payload().body().size();
    }
    reader_.Read(&msg_, this);
  }

 private:
  AsyncEnv env_;
  grpc::ServerContext ctx_;
  grpc::ServerAsyncReader<StreamingInputCallResponse, StreamingInputCallRequest> reader_;
  StreamingInputCallRequest msg_;
  StreamingInputCallResponse resp_;
  int64_t sum_ = 0;
  bool requested_ = false;
  bool finishing_ = false;
};

class StreamOutCall final : public Tag {
 public:
  explicit StreamOutCall(AsyncEnv env) : env_(env), writer_(&ctx_) {
    env_.test->RequestStreamingOutputCall(&ctx_, &req_, &writer_, env_.cq, env_.cq, this);
  }
  void Proceed(bool ok) override {
    if (finishing_) {
      delete this;
      return;
    }
    if (!requested_) {
      if (!ok) {
        delete this;
        return;
      }
      requested_ = true;
      new StreamOutCall(env_);
    } else if (!ok) {
      finishing_ = true;
      writer_.Finish(Status(StatusCode::CANCELLED, "write failed"), this);
      return;
    }
    Next();
  }

 private:
  void Next() {
    int n = req_.response_parameters_size();
    if (i_ == n) {
      finishing_ = true;
      writer_.Finish(Status::OK, this);
      return;
    }
    if (!fill_stream_response(req_, i_, &resp_)) {
      finishing_ = true;
      writer_.Finish(Status(StatusCode::INVALID_ARGUMENT, "response_parameters.size is negative"), this);
      return;
    }
    i_++;
    if (i_ == n) {
      finishing_ = true;
      writer_.WriteAndFinish(resp_, grpc::WriteOptions(), Status::OK, this);
    } else {
      writer_.Write(resp_, this);
    }
  }
  AsyncEnv env_;
  grpc::ServerContext ctx_;
  StreamingOutputCallRequest req_;
  StreamingOutputCallResponse resp_;
  grpc::ServerAsyncWriter<StreamingOutputCallResponse> writer_;
  int i_ = 0;
  bool requested_ = false;
  bool finishing_ = false;
};

void serve_cq(AsyncEnv env, int prepost) {
  for (int i = 0; i < prepost; i++) {
    new StartCall(env);
    new UnaryCallCall(env);
    new TrackCall(env);
    new StreamInCall(env);
    new StreamOutCall(env);
  }
  void *tag;
  bool ok;
  while (env.cq->Next(&tag, &ok)) static_cast<Tag *>(tag)->Proceed(ok);
}

// ---- main ---------------------------------------------------------------

std::string read_file(const char *path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) {
    fprintf(stderr, "bench-peer: cannot read %s: %s\n", path, strerror(errno));
    exit(2);
  }
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

int allowed_cpus() {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof set, &set) == 0) return CPU_COUNT(&set);
  return static_cast<int>(std::thread::hardware_concurrency());
}

void usage() {
  fprintf(stderr,
          "usage: bench-peer --listen HOST:PORT --cert PEM --key PEM "
          "[--api async|callback] [--threads N]\n");
  exit(2);
}

}  // namespace

int main(int argc, char **argv) {
  const char *listen = nullptr, *cert = nullptr, *key = nullptr;
  std::string api = "async";
  int threads = 0;
  for (int i = 1; i < argc; i++) {
    std::string a = argv[i];
    if (i + 1 >= argc) usage();
    if (a == "--listen") listen = argv[++i];
    else if (a == "--cert") cert = argv[++i];
    else if (a == "--key") key = argv[++i];
    else if (a == "--api") api = argv[++i];
    else if (a == "--threads") threads = atoi(argv[++i]);
    else usage();
  }
  if (!listen || !cert || !key || (api != "async" && api != "callback")) usage();
  if (threads <= 0) threads = allowed_cpus();

  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGTERM);
  sigaddset(&stop, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);  // every thread inherits it

  grpc::SslServerCredentialsOptions ssl;
  ssl.pem_key_cert_pairs.push_back({read_file(key), read_file(cert)});
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(listen, grpc::SslServerCredentials(ssl), &port);

  RidesCallback rides_cb;
  TestCallback test_cb;
  Rides::AsyncService rides_async;
  grpc::testing::TestService::AsyncService test_async;
  std::vector<std::unique_ptr<grpc::ServerCompletionQueue>> cqs;
  if (api == "callback") {
    builder.RegisterService(&rides_cb);
    builder.RegisterService(&test_cb);
  } else {
    builder.RegisterService(&rides_async);
    builder.RegisterService(&test_async);
    for (int i = 0; i < threads; i++) cqs.push_back(builder.AddCompletionQueue());
  }
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (!server || port == 0) {
    fprintf(stderr, "bench-peer: cannot listen on %s (port in use or bad address)\n", listen);
    return 1;
  }
  std::vector<std::thread> workers;
  for (auto &cq : cqs)
    workers.emplace_back(serve_cq, AsyncEnv{&rides_async, &test_async, cq.get()}, 64);
  printf("listening on %d (api %s, %d threads)\n", port, api.c_str(),
         api == "async" ? threads : -1);
  fflush(stdout);

  int sig;
  sigwait(&stop, &sig);
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
  for (auto &cq : cqs) cq->Shutdown();
  for (auto &t : workers) t.join();
  return 0;
}
