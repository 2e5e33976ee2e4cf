// Timing harness for a zcu104 bundle's compiled model (out/model.xmodel, from
// vai_c_xir on compile.sh) on the ZCU104, with VART (Vitis AI 2.5).
//
// It deserializes the xmodel and takes its subgraphs in topological order:
// each DPU subgraph (device "DPU") gets VART's DPU runner, each CPU subgraph
// (ops the DPU cannot run; device "CPU") the CPU runner its "runner" attribute
// names (libvart-cpu-runner.so), and one timed inference runs every one of
// them in turn (execute_async + wait), each reading the buffers the subgraphs
// before it wrote, matched by tensor name: the model end to end on the board.
// The user's input subgraph (device "USER") is not run. Its run rules, timed
// loop, power sampling (the board's hwmon rails) and results document are
// those of the shared C++ harness headers (runtime_harness/cpp/rules.h):
//
//   harness --model out/model.xmodel [--runner dpu|dummy] [--input X.npy]... [--output Y.npy]
//           [--warmup N] [--warmup-seconds S] [--iterations N] [--min-seconds S]
//           [--deadline-ms D] [--max-miss-rate R] [--pin CPUS] [--fifo] [--priority P] [--mlock]
//           [--threads 1] [--seed S] [--json FILE] [--csv FILE]
//
// --input gives the first subgraph's inputs (.npy in the runner's tensor
// shapes and types), else they get seeded random data, as does any input no
// earlier subgraph writes; --output saves the last subgraph's first output.
// The results list every subgraph, its device, whether it ran, with which
// runner library, and where each of its inputs came from. --runner dummy runs
// VART's dummy runner (libvart-dummy-runner.so, which sleeps
// DUMMY_RUNNER_PROCESS_TIME ms per job and touches no data) in place of every
// DPU and CPU runner: a smoke test of the harness anywhere VART is installed,
// marked as such in the results.
// Exit codes: those of rules.h.
#include <glog/logging.h>
#include <unistd.h>
#include <vart/experimental/runner_helper.hpp>
#include <vart/runner.hpp>
#include <vart/tensor_buffer.hpp>
#include <xir/attrs/attrs.hpp>
#include <xir/graph/graph.hpp>
#include <xir/graph/subgraph.hpp>
#include <xir/tensor/tensor.hpp>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "npy.h"
#include "rules.h"

extern "C" const char* xilinx_version();  // libvart-runner's: "Xilinx vart-runner Version: 2.5.0-..."

namespace {

constexpr const char* kDummyRunnerLib = "libvart-dummy-runner.so";
const std::vector<std::string> kRunDevices = {"DPU", "CPU"};  // the subgraphs one inference runs

struct Job {  // one DPU or CPU subgraph: its runner and the buffers it reads and writes
  const xir::Subgraph* subgraph;
  std::string device, library;
  std::unique_ptr<xir::Attrs> attrs;  // the runner may keep a pointer to them
  std::unique_ptr<vart::Runner> runner;
  std::vector<std::unique_ptr<vart::TensorBuffer>> inputs, outputs;  // the buffers it owns
  std::vector<vart::TensorBuffer*> input_ptrs, output_ptrs;           // inputs: its own or an earlier job's
  std::vector<std::pair<std::string, std::string>> sources;           // input tensor -> "subgraph NAME", file, random
};

struct Subgraph {  // a child of the root subgraph, run or not
  const xir::Subgraph* subgraph;
  std::string device;
};

std::string vart_version() {
  std::string text = xilinx_version();
  size_t at = text.find("Version: ");
  if (at == std::string::npos) return text;
  std::string version = text.substr(at + 9);
  return version.substr(0, version.find_first_of("- "));
}

std::vector<Subgraph> subgraphs_of(const xir::Graph& graph) {
  std::vector<Subgraph> found;
  for (const xir::Subgraph* child : graph.get_root_subgraph()->children_topological_sort())
    found.push_back({child, child->has_attr("device") ? child->get_attr<std::string>("device") : "none"});
  return found;
}

bool runs(const Subgraph& s) { return std::count(kRunDevices.begin(), kRunDevices.end(), s.device) > 0; }

// the first byte of a tensor buffer, and its size (a flat CPU buffer holds the whole tensor)
std::pair<char*, size_t> bytes_of(vart::TensorBuffer* buffer) {
  std::vector<int> origin(buffer->get_tensor()->get_shape().size(), 0);
  auto [address, size] = buffer->data(origin);
  return {reinterpret_cast<char*>(address), size};
}

std::string npy_descr(const xir::Tensor* tensor) {
  const xir::DataType type = tensor->get_data_type();
  if (type.bit_width == 8 && (type.type == xir::DataType::XINT || type.type == xir::DataType::INT)) return "|i1";
  if (type.bit_width == 8 && (type.type == xir::DataType::XUINT || type.type == xir::DataType::UINT)) return "|u1";
  if (type.bit_width == 32 && type.type == xir::DataType::FLOAT) return "<f4";
  throw std::runtime_error("tensor " + tensor->get_name() + " is " + type.to_string() +
                           "; the harness feeds 8-bit and float32 data");
}

std::vector<int64_t> shape_of(const xir::Tensor* tensor) {
  std::vector<std::int32_t> dims = tensor->get_shape();
  return std::vector<int64_t>(dims.begin(), dims.end());
}

void fill_random(vart::TensorBuffer* buffer, std::mt19937_64& rng) {
  auto [data, size] = bytes_of(buffer);
  if (npy_descr(buffer->get_tensor()) == "<f4") {
    std::uniform_real_distribution<float> value(-1.0f, 1.0f);
    for (size_t i = 0; i + sizeof(float) <= size; i += sizeof(float)) {
      float x = value(rng);
      std::memcpy(data + i, &x, sizeof x);
    }
    return;
  }
  std::uniform_int_distribution<int> byte(0, 255);
  for (size_t i = 0; i < size; ++i) data[i] = static_cast<char>(byte(rng));
}

void fill_from(vart::TensorBuffer* buffer, const std::string& path) {
  const xir::Tensor* tensor = buffer->get_tensor();
  npy::Array array = npy::load(path);
  auto [data, size] = bytes_of(buffer);
  if (array.descr != npy_descr(tensor) || array.shape != shape_of(tensor) || array.data.size() != size)
    throw std::runtime_error(path + " does not match the input '" + tensor->get_name() + "' (" + npy_descr(tensor) +
                             " " + std::to_string(tensor->get_shape().size()) + "-d, " + std::to_string(size) +
                             " bytes)");
  std::memcpy(data, array.data.data(), size);
}

Job make_job(const Subgraph& s, bool dummy) {
  Job job{s.subgraph, s.device, "", xir::Attrs::create(), nullptr, {}, {}, {}, {}, {}};
  if (!s.subgraph->has_attr("runner"))
    throw std::runtime_error(s.device + " subgraph " + s.subgraph->get_name() +
                             " names no runner (no \"runner\" attribute): not an xmodel vai_c_xir compiled");
  auto libraries = s.subgraph->get_attr<std::map<std::string, std::string>>("runner");
  if (dummy) {
    // VART's own hook (Runner::create_runner_with_attrs): the runner library
    // for a device, in place of the one the compiler wrote into the subgraph
    std::map<std::string, std::string> replaced;
    for (const std::string& device : kRunDevices) replaced[device] = kDummyRunnerLib;
    job.attrs->set_attr<std::map<std::string, std::string>>("lib", replaced);
    job.library = kDummyRunnerLib;
    job.runner = vart::Runner::create_runner_with_attrs(s.subgraph, job.attrs.get());
  } else {
    if (!libraries.count("run"))
      throw std::runtime_error(s.device + " subgraph " + s.subgraph->get_name() + " names no runner for mode run");
    job.library = libraries.at("run");
    job.runner = vart::Runner::create_runner(s.subgraph, "run");
  }
  job.outputs = vart::alloc_cpu_flat_tensor_buffers(job.runner->get_output_tensors());
  for (auto& b : job.outputs) job.output_ptrs.push_back(b.get());
  return job;
}

// Each job's inputs: the buffer an earlier job writes under that tensor name,
// else one of its own, filled from --input (the first job) or at random.
void connect(std::vector<Job>& jobs, const rules::Options& o) {
  std::map<std::string, std::pair<vart::TensorBuffer*, const Job*>> written;
  std::mt19937_64 rng(o.seed);
  for (Job& job : jobs) {
    for (const xir::Tensor* tensor : job.runner->get_input_tensors()) {
      auto found = written.find(tensor->get_name());
      if (found != written.end()) {
        vart::TensorBuffer* buffer = found->second.first;
        if (bytes_of(buffer).second != static_cast<size_t>(tensor->get_data_size()))
          throw std::runtime_error("tensor " + tensor->get_name() + ": " + found->second.second->subgraph->get_name() +
                                   " writes " + std::to_string(bytes_of(buffer).second) + " bytes, " +
                                   job.subgraph->get_name() + " reads " + std::to_string(tensor->get_data_size()));
        job.input_ptrs.push_back(buffer);
        job.sources.push_back({tensor->get_name(), "subgraph " + found->second.second->subgraph->get_name()});
        continue;
      }
      auto own = vart::alloc_cpu_flat_tensor_buffers({tensor});
      vart::TensorBuffer* buffer = own.at(0).get();
      bool from_file = &job == &jobs.front() && !o.inputs.empty();
      if (from_file) fill_from(buffer, o.inputs.at(job.input_ptrs.size()));
      else fill_random(buffer, rng);
      job.inputs.push_back(std::move(own.at(0)));
      job.input_ptrs.push_back(buffer);
      job.sources.push_back({tensor->get_name(), from_file ? "file" : "random"});
    }
    for (vart::TensorBuffer* out : job.output_ptrs) written[out->get_tensor()->get_name()] = {out, &job};
  }
}

void execute(Job& job) {
  auto [id, status] = job.runner->execute_async(job.input_ptrs, job.output_ptrs);
  if (status != 0)
    throw std::runtime_error("execute_async on " + job.subgraph->get_name() + " failed (" + std::to_string(status) + ")");
  int done = job.runner->wait(static_cast<int>(id), -1);
  if (done != 0)
    throw std::runtime_error("wait on " + job.subgraph->get_name() + " failed (" + std::to_string(done) + ")");
}

std::string extra(const std::string& runner, const std::vector<Subgraph>& subgraphs, const std::vector<Job>& jobs) {
  std::ostringstream out;
  out << "{\"runner\": " << results::quoted(runner) << ", \"subgraphs\": [";
  for (size_t i = 0; i < subgraphs.size(); ++i) {
    const Subgraph& s = subgraphs[i];
    auto job = std::find_if(jobs.begin(), jobs.end(), [&](const Job& j) { return j.subgraph == s.subgraph; });
    out << (i ? ", " : "") << "{\"name\": " << results::quoted(s.subgraph->get_name())
        << ", \"device\": " << results::quoted(s.device) << ", \"ran\": " << (job != jobs.end() ? "true" : "false");
    if (job != jobs.end()) {
      out << ", \"library\": " << results::quoted(job->library) << ", \"inputs\": {";
      for (size_t k = 0; k < job->sources.size(); ++k)
        out << (k ? ", " : "") << results::quoted(job->sources[k].first) << ": "
            << results::quoted(job->sources[k].second);
      out << "}";
    }
    out << "}";
  }
  out << "]}";
  return out.str();
}

std::vector<std::string> notes(const std::string& runner, const std::vector<Job>& jobs) {
  std::vector<std::string> found;
  size_t cpu = std::count_if(jobs.begin(), jobs.end(), [](const Job& j) { return j.device == "CPU"; });
  if (jobs.size() > 1)
    found.push_back("each time is the model's " + std::to_string(jobs.size() - cpu) + " DPU and " +
                    std::to_string(cpu) + " CPU subgraph(s) run in turn, in topological order");
  for (size_t j = 1; j < jobs.size(); ++j)
    for (const auto& [tensor, source] : jobs[j].sources)
      if (source == "random")
        found.push_back("input " + tensor + " of " + jobs[j].subgraph->get_name() +
                        " is written by no subgraph run before it: it holds random data");
  if (runner == "dummy")
    found.push_back(std::string("dummy runner (") + kDummyRunnerLib +
                    ") in place of every DPU and CPU runner: no DPU ran" +
                    (cpu ? " and no CPU subgraph was computed" : "") +
                    "; the times are the dummy's sleep and say nothing about the model");
  return found;
}

// XIR and VART stop on a failed check (glog's LOG(FATAL), after logging why):
// end with one line of the harness's, saying what it was doing, and its exit
// code instead of an abort.
std::string g_doing = "starting";

void on_vart_failure() {
  std::string line = "harness: error: XIR/VART stopped while " + g_doing + " (its reason is logged above)\n";
  ssize_t written = write(STDERR_FILENO, line.data(), line.size());
  (void)written;
  _exit(rules::kExitError);
}

int run(const rules::Options& o, const std::string& runner) {
  std::string started_at = rules::utc_now();
  env::Requests requests = rules::request_scheduling(o);  // before VART starts its threads
  if (!std::ifstream(o.model)) throw std::runtime_error("cannot open " + o.model);
  g_doing = "reading " + o.model + " (not an xmodel?)";
  std::unique_ptr<xir::Graph> graph = xir::Graph::deserialize(o.model);
  std::vector<Subgraph> subgraphs = subgraphs_of(*graph);
  if (std::none_of(subgraphs.begin(), subgraphs.end(), [](const Subgraph& s) { return s.device == "DPU"; })) {
    std::string listed;
    for (const Subgraph& s : subgraphs) listed += (listed.empty() ? "" : ", ") + s.device;
    throw std::runtime_error(o.model + " has no DPU subgraph (its subgraphs run on: " + listed +
                             "); run the harness on the xmodel vai_c_xir compiled (compile.sh)");
  }
  std::vector<Job> jobs;
  for (const Subgraph& s : subgraphs) {
    if (!runs(s)) continue;
    if (runner == "dummy") g_doing = "creating VART's dummy runner for " + s.subgraph->get_name();
    else if (s.device == "DPU")
      g_doing = "creating the DPU runner (is there a DPU here? --runner dummy runs VART's dummy runner)";
    else g_doing = "creating the CPU runner of " + s.subgraph->get_name();
    jobs.push_back(make_job(s, runner == "dummy"));
  }
  g_doing = "running the subgraphs";
  if (!o.inputs.empty() && o.inputs.size() != jobs.front().runner->get_input_tensors().size())
    rules::usage_error("the first subgraph has " + std::to_string(jobs.front().runner->get_input_tensors().size()) +
                       " inputs; give each an --input");
  connect(jobs, o);
  auto step = [&] {
    for (Job& job : jobs) execute(job);
  };
  step();
  if (!o.output.empty()) {
    vart::TensorBuffer* out = jobs.back().output_ptrs.at(0);
    auto [data, size] = bytes_of(out);
    npy::save(o.output, npy_descr(out->get_tensor()), shape_of(out->get_tensor()), data, size);
  }
  rules::lock_memory(o, requests);
  rules::Timed timed = rules::timed_run(step, o);
  rules::Harness harness{"vart", "vart", vart_version(), extra(runner, subgraphs, jobs), notes(runner, jobs)};
  return rules::report(o, started_at, requests, harness, timed);
}

}  // namespace

int main(int argc, char** argv) {
  rules::Options options = rules::parse(argc, argv, {"--runner"});
  std::string runner = options.own.count("--runner") ? options.own.at("--runner") : "dpu";
  if (options.model.empty()) rules::usage_error("--model is required (the xmodel vai_c_xir compiled)");
  if (runner != "dpu" && runner != "dummy") rules::usage_error("--runner must be dpu or dummy, not " + runner);
  if (options.threads != 1) rules::usage_error("--threads must be 1: the VART harness runs one DPU job at a time");
  google::InstallFailureFunction(&on_vart_failure);
  return rules::guarded([&] { return run(options, runner); });
}
