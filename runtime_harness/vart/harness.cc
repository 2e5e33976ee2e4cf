// Timing harness for a zcu104 bundle's compiled model (out/model.xmodel, from
// vai_c_xir on compile.sh) on the DPU, with VART (Vitis AI 2.5).
//
// It deserializes the xmodel, takes its DPU subgraphs (device "DPU", in
// topological order), makes a runner for each and times one inference as
// execute_async + wait on every DPU subgraph in turn. The CPU subgraphs
// between them (ops the DPU cannot run) are not run: the times are the DPU's.
// Its run rules, timed loop, power sampling (the board's hwmon rails) and
// results document are those of the shared C++ harness headers
// (runtime_harness/cpp/rules.h):
//
//   harness --model out/model.xmodel [--runner dpu|dummy] [--input X.npy]... [--output Y.npy]
//           [--warmup N] [--warmup-seconds S] [--iterations N] [--min-seconds S]
//           [--deadline-ms D] [--max-miss-rate R] [--pin CPUS] [--fifo] [--priority P] [--mlock]
//           [--threads 1] [--seed S] [--json FILE] [--csv FILE]
//
// --input gives the first DPU subgraph's inputs (int8 .npy in the runner's
// tensor shapes), else they get seeded random bytes; --output saves the last
// DPU subgraph's first output. --runner dummy runs VART's dummy runner
// (libvart-dummy-runner.so, which sleeps DUMMY_RUNNER_PROCESS_TIME ms per
// job and touches no data) in place of the DPU's: a smoke test of the harness
// anywhere VART is installed, marked as such in the results.
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

struct Job {  // one DPU subgraph: its runner and the buffers it reads and writes
  const xir::Subgraph* subgraph;
  std::unique_ptr<xir::Attrs> attrs;  // the runner may keep a pointer to them
  std::unique_ptr<vart::Runner> runner;
  std::vector<std::unique_ptr<vart::TensorBuffer>> inputs, outputs;
  std::vector<vart::TensorBuffer*> input_ptrs, output_ptrs;
};

std::string vart_version() {
  std::string text = xilinx_version();
  size_t at = text.find("Version: ");
  if (at == std::string::npos) return text;
  std::string version = text.substr(at + 9);
  return version.substr(0, version.find_first_of("- "));
}

std::vector<const xir::Subgraph*> dpu_subgraphs(const xir::Graph& graph, std::vector<std::string>* devices) {
  std::vector<const xir::Subgraph*> found;
  for (const xir::Subgraph* child : graph.get_root_subgraph()->children_topological_sort()) {
    std::string device = child->has_attr("device") ? child->get_attr<std::string>("device") : "none";
    devices->push_back(device);
    if (device == "DPU") found.push_back(child);
  }
  return found;
}

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
  throw std::runtime_error("tensor " + tensor->get_name() + " is " + type.to_string() + "; the harness feeds 8-bit data");
}

std::vector<int64_t> shape_of(const xir::Tensor* tensor) {
  std::vector<std::int32_t> dims = tensor->get_shape();
  return std::vector<int64_t>(dims.begin(), dims.end());
}

void fill_random(vart::TensorBuffer* buffer, std::mt19937_64& rng) {
  npy_descr(buffer->get_tensor());  // 8-bit, or say why not
  auto [data, size] = bytes_of(buffer);
  std::uniform_int_distribution<int> byte(0, 255);
  for (size_t i = 0; i < size; ++i) data[i] = static_cast<char>(byte(rng));
}

void fill_from(vart::TensorBuffer* buffer, const std::string& path) {
  const xir::Tensor* tensor = buffer->get_tensor();
  npy::Array array = npy::load(path);
  auto [data, size] = bytes_of(buffer);
  if (array.descr != npy_descr(tensor) || array.shape != shape_of(tensor) || array.data.size() != size)
    throw std::runtime_error(path + " does not match DPU input '" + tensor->get_name() + "' (" + npy_descr(tensor) +
                             " " + std::to_string(tensor->get_shape().size()) + "-d, " + std::to_string(size) +
                             " bytes)");
  std::memcpy(data, array.data.data(), size);
}

Job make_job(const xir::Subgraph* subgraph, bool dummy) {
  Job job{subgraph, xir::Attrs::create(), nullptr, {}, {}, {}, {}};
  if (dummy) {
    // VART's own hook (Runner::create_runner_with_attrs): the runner library
    // for a device, in place of the one the compiler wrote into the subgraph
    job.attrs->set_attr<std::map<std::string, std::string>>("lib", {{"DPU", kDummyRunnerLib}});
    job.runner = vart::Runner::create_runner_with_attrs(subgraph, job.attrs.get());
  } else {
    job.runner = vart::Runner::create_runner(subgraph, "run");
  }
  job.inputs = vart::alloc_cpu_flat_tensor_buffers(job.runner->get_input_tensors());
  job.outputs = vart::alloc_cpu_flat_tensor_buffers(job.runner->get_output_tensors());
  for (auto& b : job.inputs) job.input_ptrs.push_back(b.get());
  for (auto& b : job.outputs) job.output_ptrs.push_back(b.get());
  return job;
}

void execute(Job& job) {
  auto [id, status] = job.runner->execute_async(job.input_ptrs, job.output_ptrs);
  if (status != 0)
    throw std::runtime_error("execute_async on " + job.subgraph->get_name() + " failed (" + std::to_string(status) + ")");
  int done = job.runner->wait(static_cast<int>(id), -1);
  if (done != 0)
    throw std::runtime_error("wait on " + job.subgraph->get_name() + " failed (" + std::to_string(done) + ")");
}

std::string extra(const std::string& runner, const std::vector<Job>& jobs, const std::vector<std::string>& devices) {
  std::ostringstream out;
  out << "{\"runner\": " << results::quoted(runner) << ", \"dpu_subgraphs\": [";
  for (size_t i = 0; i < jobs.size(); ++i) out << (i ? ", " : "") << results::quoted(jobs[i].subgraph->get_name());
  out << "], \"subgraph_devices\": [";
  for (size_t i = 0; i < devices.size(); ++i) out << (i ? ", " : "") << results::quoted(devices[i]);
  out << "]}";
  return out.str();
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
  std::vector<std::string> devices;
  std::vector<const xir::Subgraph*> subgraphs = dpu_subgraphs(*graph, &devices);
  if (subgraphs.empty()) {
    std::string listed;
    for (const std::string& d : devices) listed += (listed.empty() ? "" : ", ") + d;
    throw std::runtime_error(o.model + " has no DPU subgraph (its subgraphs run on: " + listed +
                             "); run the harness on the xmodel vai_c_xir compiled (compile.sh)");
  }
  std::vector<Job> jobs;
  g_doing = runner == "dummy" ? "creating VART's dummy runner"
                              : "creating the DPU runner (is there a DPU here? --runner dummy runs VART's dummy runner)";
  for (const xir::Subgraph* subgraph : subgraphs) jobs.push_back(make_job(subgraph, runner == "dummy"));
  g_doing = "running the DPU subgraphs";
  if (!o.inputs.empty() && o.inputs.size() != jobs.front().inputs.size())
    rules::usage_error("the first DPU subgraph has " + std::to_string(jobs.front().inputs.size()) +
                       " inputs; give each an --input");
  std::mt19937_64 rng(o.seed);
  for (size_t j = 0; j < jobs.size(); ++j)
    for (size_t i = 0; i < jobs[j].inputs.size(); ++i) {
      if (j == 0 && !o.inputs.empty()) fill_from(jobs[j].inputs[i].get(), o.inputs[i]);
      else fill_random(jobs[j].inputs[i].get(), rng);
    }
  auto step = [&] {
    for (Job& job : jobs) execute(job);
  };
  step();
  if (!o.output.empty()) {
    vart::TensorBuffer* out = jobs.back().outputs.at(0).get();
    auto [data, size] = bytes_of(out);
    npy::save(o.output, npy_descr(out->get_tensor()), shape_of(out->get_tensor()), data, size);
  }
  rules::lock_memory(o, requests);
  rules::Timed timed = rules::timed_run(step, o);
  rules::Harness harness{"vart", "vart", vart_version(), extra(runner, jobs, devices), {}};
  if (jobs.size() > 1 || std::count(devices.begin(), devices.end(), "CPU"))
    harness.notes.push_back("each time is the " + std::to_string(jobs.size()) +
                            " DPU subgraph(s) run in turn; the model's CPU subgraphs are not run");
  if (runner == "dummy")
    harness.notes.push_back(std::string("dummy runner (") + kDummyRunnerLib +
                            "): no DPU ran; the times are the dummy's sleep and say nothing about the model");
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
