// Timing harness for a bundle's model.so (a TVM Relax VM executable).
//
// It uses only the tvm-ffi C++ API (the apache-tvm wheel ships no complete
// set of tvm/runtime headers) and links libtvm_runtime.so, whose static
// initializers register the Relax VM and the VMExecutable loader. It obeys
// the run rules of runtime_harness/rt_rules.py (same flags) and writes the
// results document of runtime_harness/results_schema.json:
//
//   harness --model model.so --inputs inputs.txt [--input X.npy]... [--output Y.npy]
//           [--warmup N] [--warmup-seconds S] [--iterations N] [--min-seconds S]
//           [--deadline-ms D] [--max-miss-rate R] [--pin CPUS] [--fifo] [--priority P] [--mlock]
//           [--threads T] [--seed S] [--json FILE] [--csv FILE]
//
// inputs.txt names the model's inputs, one a line: NAME DTYPE D0 D1 ...; an
// input without --input gets seeded random data. Exit codes: 0 the run
// passed; 4 it is invalid (too few samples for a p99) or missed its deadline
// more often than --max-miss-rate allows, the results still written; 2 a bad
// command line; 1 the model could not run.
#include <dlpack/dlpack.h>
#include <tvm/ffi/any.h>
#include <tvm/ffi/container/array.h>
#include <tvm/ffi/container/tensor.h>
#include <tvm/ffi/error.h>
#include <tvm/ffi/extra/module.h>
#include <tvm/ffi/function.h>

#include <chrono>
#include <cstdlib>
#include <ctime>
#include <dirent.h>
#include <fstream>
#include <iostream>
#include <optional>
#include <random>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "env.h"
#include "npy.h"
#include "results.h"

#ifndef NCC_TVM_VERSION
#define NCC_TVM_VERSION "unknown"
#endif

namespace ffi = tvm::ffi;

namespace {

constexpr int kExitFailedRun = 4;

struct Options {  // the run rules (rt_rules.RunRules, same defaults) and the harness's own flags
  std::string model, inputs_spec, output, json, csv;
  std::vector<std::string> inputs;
  int warmup = 10, iterations = 100, threads = 1, priority = 80;
  double warmup_seconds = 0.2, min_seconds = 0;
  results::Deadline deadline;
  std::vector<int> pin;
  bool fifo = false, mlock = false;
  uint64_t seed = 0;
};

struct InputSpec {
  std::string name, dtype;
  std::vector<int64_t> shape;
};

struct DType {
  const char* name;
  const char* descr;
  DLDataType dl;
};

const DType kDTypes[] = {
    {"float32", "<f4", {kDLFloat, 32, 1}}, {"float16", "<f2", {kDLFloat, 16, 1}},
    {"float64", "<f8", {kDLFloat, 64, 1}}, {"int8", "|i1", {kDLInt, 8, 1}},
    {"uint8", "|u1", {kDLUInt, 8, 1}},     {"int32", "<i4", {kDLInt, 32, 1}},
    {"int64", "<i8", {kDLInt, 64, 1}},     {"bool", "|b1", {kDLBool, 8, 1}},
};

const DType& dtype_named(const std::string& name) {
  for (const DType& d : kDTypes)
    if (name == d.name || name == d.descr) return d;
  throw std::runtime_error("unsupported dtype " + name);
}

const DType& dtype_of(DLDataType dl) {
  for (const DType& d : kDTypes)
    if (d.dl.code == dl.code && d.dl.bits == dl.bits && d.dl.lanes == dl.lanes) return d;
  throw std::runtime_error("unsupported output dtype");
}

void usage_error(const std::string& message) {
  std::cerr << "harness: " << message << "\n";
  std::exit(2);
}

std::vector<int> parse_cpu_list(const std::string& text) {  // 0,2-3
  std::vector<int> cpus;
  std::stringstream parts(text);
  for (std::string part; std::getline(parts, part, ',');) {
    size_t dash = part.find('-');
    int first = std::stoi(part.substr(0, dash));
    int last = dash == std::string::npos ? first : std::stoi(part.substr(dash + 1));
    if (first < 0 || last < first) throw std::invalid_argument(text);
    for (int cpu = first; cpu <= last; ++cpu) cpus.push_back(cpu);
  }
  if (cpus.empty()) throw std::invalid_argument(text);
  return cpus;
}

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string flag = argv[i];
    if (flag == "--fifo" || flag == "--mlock") {
      (flag == "--fifo" ? o.fifo : o.mlock) = true;
      continue;
    }
    if (i + 1 >= argc) usage_error(flag + " needs a value");
    std::string value = argv[++i];
    try {
      if (flag == "--model") o.model = value;
      else if (flag == "--inputs") o.inputs_spec = value;
      else if (flag == "--input") o.inputs.push_back(value);
      else if (flag == "--output") o.output = value;
      else if (flag == "--json") o.json = value;
      else if (flag == "--csv") o.csv = value;
      else if (flag == "--warmup") o.warmup = std::stoi(value);
      else if (flag == "--warmup-seconds") o.warmup_seconds = std::stod(value);
      else if (flag == "--iterations") o.iterations = std::stoi(value);
      else if (flag == "--min-seconds") o.min_seconds = std::stod(value);
      else if (flag == "--deadline-ms") o.deadline.deadline_ms = std::stod(value);
      else if (flag == "--max-miss-rate") o.deadline.max_miss_rate = std::stod(value);
      else if (flag == "--pin") o.pin = parse_cpu_list(value);
      else if (flag == "--priority") o.priority = std::stoi(value);
      else if (flag == "--threads") o.threads = std::stoi(value);
      else if (flag == "--seed") o.seed = std::stoull(value);
      else usage_error("unknown option " + flag);
    } catch (const std::logic_error&) {
      usage_error("bad value for " + flag + ": " + value);
    }
  }
  if (o.model.empty() || o.inputs_spec.empty()) usage_error("--model and --inputs are required");
  const std::pair<bool, const char*> checks[] = {
      {o.warmup >= 0, "--warmup must be 0 or more"},
      {o.warmup_seconds >= 0, "--warmup-seconds must be 0 or more"},
      {o.iterations >= 1, "--iterations must be at least 1"},
      {o.min_seconds >= 0, "--min-seconds must be 0 or more"},
      {!o.deadline.deadline_ms || *o.deadline.deadline_ms > 0, "--deadline-ms must be positive"},
      {!o.deadline.max_miss_rate || (*o.deadline.max_miss_rate >= 0 && *o.deadline.max_miss_rate <= 1),
       "--max-miss-rate must be within 0..1"},
      {!o.deadline.max_miss_rate || o.deadline.deadline_ms, "--max-miss-rate needs --deadline-ms"},
      {o.priority >= 1 && o.priority <= 99, "--priority must be within 1..99 (SCHED_FIFO)"},
      {o.threads >= 1, "--threads must be at least 1"}};
  for (const auto& [ok, message] : checks)
    if (!ok) usage_error(message);
  return o;
}

std::vector<InputSpec> read_input_specs(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot open " + path);
  std::vector<InputSpec> specs;
  for (std::string line; std::getline(in, line);) {
    std::istringstream words(line);
    InputSpec spec;
    if (!(words >> spec.name >> spec.dtype)) continue;
    for (int64_t d; words >> d;) spec.shape.push_back(d);
    specs.push_back(spec);
  }
  return specs;
}

struct AlignedAlloc {  // 64-byte aligned host memory, as TVM's own CPU allocator gives
  void AllocData(DLTensor* t) {
    size_t bytes = (ffi::GetDataSize(*t) + 63) / 64 * 64;
    t->data = std::aligned_alloc(64, bytes ? bytes : 64);
  }
  void FreeData(DLTensor* t) { std::free(t->data); }
};

ffi::Tensor make_tensor(const InputSpec& spec, const DType& dtype) {
  return ffi::Tensor::FromNDAlloc(AlignedAlloc(), ffi::ShapeView(spec.shape.data(), spec.shape.size()),
                                  dtype.dl, DLDevice{kDLCPU, 0});
}

ffi::Tensor load_input(const InputSpec& spec, const std::string& path) {
  npy::Array array = npy::load(path);
  const DType& dtype = dtype_named(spec.dtype);
  if (array.descr != dtype.descr || array.shape != spec.shape)
    throw std::runtime_error(path + " does not match input '" + spec.name + "' (" + spec.dtype + ")");
  ffi::Tensor tensor = make_tensor(spec, dtype);
  std::memcpy(tensor.data_ptr(), array.data.data(), array.data.size());
  return tensor;
}

ffi::Tensor random_input(const InputSpec& spec, std::mt19937_64& rng) {
  const DType& dtype = dtype_named(spec.dtype);
  ffi::Tensor tensor = make_tensor(spec, dtype);
  int64_t n = npy::element_count(spec.shape);
  if (dtype.dl.code == kDLFloat && dtype.dl.bits == 32) {
    std::normal_distribution<float> normal(0.0f, 1.0f);
    float* data = static_cast<float*>(tensor.data_ptr());
    for (int64_t i = 0; i < n; ++i) data[i] = normal(rng);
  } else if (dtype.dl.bits == 8) {
    std::uniform_int_distribution<int> byte(dtype.dl.code == kDLInt ? -128 : 0, dtype.dl.code == kDLInt ? 127 : 255);
    int8_t* data = static_cast<int8_t*>(tensor.data_ptr());
    for (int64_t i = 0; i < n; ++i) data[i] = static_cast<int8_t>(byte(rng));
  } else {
    throw std::runtime_error("random data for input '" + spec.name + "' (" + spec.dtype + ") needs --input");
  }
  return tensor;
}

ffi::Tensor first_output(const ffi::Any& result) {
  if (auto tensor = result.try_cast<ffi::Tensor>()) return *tensor;
  if (auto tuple = result.try_cast<ffi::Array<ffi::Any>>()) {
    if (!tuple->empty()) return first_output((*tuple)[0]);
  }
  throw std::runtime_error("the model returned no tensor");
}

void save_output(const std::string& path, const ffi::Tensor& out) {
  ffi::ShapeView dims = out.shape();
  std::vector<int64_t> shape(dims.begin(), dims.end());
  npy::save(path, dtype_of(out.dtype()).descr, shape, out.data_ptr(), ffi::GetDataSize(out));
}

// The Relax VM of model.so on the CPU, as tvm.relax.VirtualMachine sets it up.
ffi::Function load_main(const std::string& model_path) {
  // dlopen searches the library path for a name without a slash
  char* resolved = realpath(model_path.c_str(), nullptr);
  if (!resolved) throw std::runtime_error("cannot open " + model_path);
  std::string absolute(resolved);
  std::free(resolved);
  ffi::Module executable = ffi::Module::LoadFromFile(absolute);
  ffi::Module vm = executable->GetFunction("vm_load_executable", true).value()().cast<ffi::Module>();
  constexpr int kPooledAllocator = 2;
  vm->GetFunction("vm_initialization", false).value()(static_cast<int>(kDLCPU), 0, kPooledAllocator);
  return vm->GetFunction("main", false).value();
}

void write_text(const std::string& path, const std::string& text) {
  if (path.empty()) {
    std::cout << text;
    return;
  }
  std::ofstream file(path);
  file << text;
  if (!file) throw std::runtime_error("cannot write " + path);
}

using Clock = std::chrono::steady_clock;

// Call step() at least min_count times and for at least min_seconds; each
// call's time in ms (from whole nanoseconds, so exact to 6 decimals), and the seconds taken.
template <typename Step>
std::vector<double> run_for(Step step, int min_count, double min_seconds, double* seconds) {
  std::vector<double> times;
  auto start = Clock::now(), now = start;
  auto until = start + std::chrono::nanoseconds(static_cast<int64_t>(min_seconds * 1e9));
  while (static_cast<int>(times.size()) < min_count || now < until) {
    auto before = Clock::now();
    step();
    now = Clock::now();
    times.push_back(std::chrono::duration_cast<std::chrono::nanoseconds>(now - before).count() / 1e6);
  }
  *seconds = std::chrono::duration<double>(now - start).count();
  return times;
}

std::string power_section() {
  const char* root_env = std::getenv("NCC_HWMON_ROOT");
  std::string root = root_env && *root_env ? root_env : "/sys/class/hwmon";
  std::regex sensors("^(ina2[0-9][0-9]|ina2xx|ina3221|pmbus|irps[0-9]+|ir3[0-9]+|ucd9[0-9]+|tps5[0-9]+|max20[0-9]+)");
  bool found = false;
  if (DIR* folder = opendir(root.c_str())) {
    while (dirent* entry = readdir(folder))
      found |= std::regex_search(env::read_text(root + "/" + entry->d_name + "/name").value_or(""), sensors);
    closedir(folder);
  }
  std::string reason = found ? "this machine has power rails under " + root +
                                   ", but the C++ harness does not sample them"
                             : "no INA2xx, INA3221 or PMBus sensor under " + root;
  return "{\"available\": false, \"reason\": " + results::quoted(reason) + "}";
}

std::string utc_now() {
  char text[32];
  std::time_t now = std::time(nullptr);
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%S+00:00", std::gmtime(&now));
  return text;
}

std::string loop_section(size_t iterations, double seconds, int min_iterations, double min_seconds) {
  std::ostringstream out;
  out << "{\"iterations\": " << iterations << ", \"seconds\": " << results::number(seconds)
      << ", \"min_iterations\": " << min_iterations << ", \"min_seconds\": " << results::number(min_seconds);
  return out.str();
}

int run(const Options& o) {
  std::string started_at = utc_now();
  // pinning, the scheduling policy and the thread count before the VM starts
  // its thread pool, whose threads inherit the first two and read the last
  env::Requests requests{o.pin, env::pin(o.pin), env::fifo(o.fifo, o.priority), {}, o.priority};
  setenv("TVM_NUM_THREADS", std::to_string(o.threads).c_str(), 1);
  std::vector<InputSpec> specs = read_input_specs(o.inputs_spec);
  if (!o.inputs.empty() && o.inputs.size() != specs.size())
    usage_error("the model has " + std::to_string(specs.size()) + " inputs; give each an --input");
  std::mt19937_64 rng(o.seed);
  std::vector<ffi::Tensor> tensors;
  for (size_t i = 0; i < specs.size(); ++i)
    tensors.push_back(o.inputs.empty() ? random_input(specs[i], rng) : load_input(specs[i], o.inputs[i]));
  std::vector<ffi::AnyView> args(tensors.begin(), tensors.end());
  ffi::Function main_fn = load_main(o.model);
  auto step = [&] {
    ffi::Any result;
    main_fn.CallPacked(args.data(), static_cast<int32_t>(args.size()), &result);
    return result;
  };
  ffi::Any first = step();  // also starts the thread pool before mlockall
  if (!o.output.empty()) save_output(o.output, first_output(first));
  requests.mlock = env::mlock(o.mlock);
  for (const std::string& refusal : env::refusals(requests)) std::cerr << "harness: warning: " << refusal << "\n";

  double warm_seconds = 0, seconds = 0;
  std::vector<double> warm = run_for(step, o.warmup, o.warmup_seconds, &warm_seconds);
  std::vector<double> times = run_for(step, o.iterations, o.min_seconds, &seconds);

  std::vector<std::string> failed = results::failures(times.size(), times, o.deadline);
  bool valid = static_cast<int64_t>(times.size()) >= results::kValidityMinSamples;
  std::ostringstream doc;
  std::string model = o.model.substr(o.model.find_last_of('/') + 1);
  doc << "{\"format\": \"ncc-results\", \"version\": 2, \"harness\": \"tvm-cpp\", \"model\": "
      << results::quoted(model) << ", \"started_at\": " << results::quoted(started_at) << ", \"emulated\": false"
      << ", \"valid\": " << (valid ? "true" : "false") << ", \"invalid_reasons\": ["
      << (valid ? "" : results::quoted(failed.front().substr(std::string("run invalid: ").size()))) << "]"
      << ", \"environment\": "
      << env::describe(o.threads, NCC_TVM_VERSION, requests,
                       "{\"tvm_ffi\": \"" + std::to_string(TVM_FFI_VERSION_MAJOR) + "." +
                           std::to_string(TVM_FFI_VERSION_MINOR) + "\", \"allocator\": \"pooled\"}")
      << ", \"warmup\": " << loop_section(warm.size(), warm_seconds, o.warmup, o.warmup_seconds) << "}"
      << ", \"run\": " << loop_section(times.size(), seconds, o.iterations, o.min_seconds)
      << ", \"seed\": " << (o.inputs.empty() ? std::to_string(o.seed) : "null")
      << ", \"input\": " << (o.inputs.empty() ? "\"random\"" : "\"file\"") << "}"
      << ", " << results::statistics(times, o.deadline)
      << ", \"memory\": {\"peak_rss_bytes\": " << env::peak_rss_bytes()
      << ", \"model_weight_bytes\": null, \"model_activation_bytes\": null}"
      << ", \"power\": " << power_section() << ", \"notes\": [], \"times_ms\": [";
  for (size_t i = 0; i < times.size(); ++i) doc << (i ? ", " : "") << results::number(times[i]);
  doc << "]}\n";
  write_text(o.json, doc.str());
  if (!o.csv.empty()) {
    std::ostringstream csv;
    csv << "iteration,latency_ms\n";
    for (size_t i = 0; i < times.size(); ++i) csv << i << "," << results::number(times[i]) << "\n";
    write_text(o.csv, csv.str());
  }
  if (failed.empty()) return 0;
  std::string joined;
  for (const std::string& line : failed) joined += (joined.empty() ? "" : "; ") + line;
  std::cerr << "harness: " << joined << "\n";
  return kExitFailedRun;
}

}  // namespace

int main(int argc, char** argv) {
  Options options = parse(argc, argv);
  try {
    return run(options);
  } catch (const std::exception& err) {
    std::cerr << "harness: error: " << err.what() << "\n";
    return 1;
  }
}
