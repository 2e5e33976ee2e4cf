// Timing harness for a bundle's model.so (a TVM Relax VM executable).
//
// It uses only the tvm-ffi C++ API (the apache-tvm wheel ships no complete
// set of tvm/runtime headers) and links libtvm_runtime.so, whose static
// initializers register the Relax VM and the VMExecutable loader. Its run
// rules, timed loop, power sampling and results document are those of the
// shared C++ harness headers (runtime_harness/cpp/rules.h):
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

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "npy.h"
#include "rules.h"

#ifndef NCC_TVM_VERSION
#define NCC_TVM_VERSION "unknown"
#endif

namespace ffi = tvm::ffi;

namespace {

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

int run(const rules::Options& o) {
  std::string started_at = rules::utc_now();
  // pinning, the scheduling policy and the thread count before the VM starts
  // its thread pool, whose threads inherit the first two and read the last
  env::Requests requests = rules::request_scheduling(o);
  setenv("TVM_NUM_THREADS", std::to_string(o.threads).c_str(), 1);
  std::vector<InputSpec> specs = read_input_specs(o.own.at("--inputs"));
  if (!o.inputs.empty() && o.inputs.size() != specs.size())
    rules::usage_error("the model has " + std::to_string(specs.size()) + " inputs; give each an --input");
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
  rules::lock_memory(o, requests);
  rules::Timed timed = rules::timed_run(step, o);
  rules::Harness harness{"tvm-cpp", "tvm", NCC_TVM_VERSION,
                         "{\"tvm_ffi\": \"" + std::to_string(TVM_FFI_VERSION_MAJOR) + "." +
                             std::to_string(TVM_FFI_VERSION_MINOR) + "\", \"allocator\": \"pooled\"}",
                         {}};
  return rules::report(o, started_at, requests, harness, timed);
}

}  // namespace

int main(int argc, char** argv) {
  rules::Options options = rules::parse(argc, argv, {"--inputs"});
  if (options.model.empty() || !options.own.count("--inputs")) rules::usage_error("--model and --inputs are required");
  return rules::guarded([&] { return run(options); });
}
