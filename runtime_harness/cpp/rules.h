// The run rules every C++ harness obeys (runtime_harness/rt_rules.py: same
// flags, same defaults, same checks), the timed loop with power sampled, and
// the results document and CSV a run ends with. A harness supplies its step
// (one inference) and what it says about itself; everything else is here.
//
// Flags: [--warmup N] [--warmup-seconds S] [--iterations N] [--min-seconds S]
//        [--deadline-ms D] [--max-miss-rate R] [--pin CPUS] [--fifo] [--priority P] [--mlock]
//        [--threads T] [--seed S] [--model PATH] [--input X.npy]... [--output Y.npy]
//        [--json FILE] [--csv FILE], and the harness's own value flags.
// Exit codes: 0 the run passed; 4 it is invalid (too few samples for a p99)
// or missed its deadline more often than --max-miss-rate allows, the results
// still written; 2 a bad command line; 1 the model could not run.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <ctime>
#include <exception>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "env.h"
#include "power.h"
#include "results.h"

namespace rules {

constexpr int kExitError = 1, kExitUsage = 2, kExitFailedRun = 4;

struct Options {  // the run rules (rt_rules.RunRules, same defaults) and the flags every harness takes
  std::string model, output, json, csv;
  std::vector<std::string> inputs;
  int warmup = 10, iterations = 100, threads = 1, priority = 80;
  double warmup_seconds = 0.2, min_seconds = 0;
  results::Deadline deadline;
  std::vector<int> pin;
  bool fifo = false, mlock = false;
  uint64_t seed = 0;
  std::map<std::string, std::string> own;  // the harness's own flags, by name with its dashes
};

[[noreturn]] inline void usage_error(const std::string& message) {
  std::cerr << "harness: " << message << "\n";
  std::exit(kExitUsage);
}

inline std::vector<int> parse_cpu_list(const std::string& text) {  // 0,2-3, the kernel's cpulist syntax
  std::vector<int> cpus;
  std::stringstream parts(text);
  for (std::string part; std::getline(parts, part, ',');) {
    size_t dash = part.find('-');
    size_t used = 0;
    int first = std::stoi(part.substr(0, dash), &used);
    if (used != part.substr(0, dash).size()) throw std::invalid_argument(text);
    int last = dash == std::string::npos ? first : std::stoi(part.substr(dash + 1));
    if (first < 0 || last < first) throw std::invalid_argument(text);
    for (int cpu = first; cpu <= last; ++cpu) cpus.push_back(cpu);
  }
  if (cpus.empty()) throw std::invalid_argument(text);
  return cpus;
}

// The command line; `own_flags` are the harness's own flags that take a value.
inline Options parse(int argc, char** argv, const std::vector<std::string>& own_flags) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string flag = argv[i];
    if (flag == "--fifo" || flag == "--mlock") {
      (flag == "--fifo" ? o.fifo : o.mlock) = true;
      continue;
    }
    if (flag.rfind("--", 0) != 0) usage_error("unexpected argument " + flag);
    if (i + 1 >= argc) usage_error(flag + " needs a value");
    std::string value = argv[++i];
    try {
      if (flag == "--model") o.model = value;
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
      else if (std::find(own_flags.begin(), own_flags.end(), flag) != own_flags.end()) o.own[flag] = value;
      else usage_error("unknown option " + flag);
    } catch (const std::logic_error&) {
      usage_error(flag == "--pin" ? "bad CPU list '" + value + "': expected numbers and ranges such as 0,2-3"
                                  : "bad value for " + flag + ": " + value);
    }
  }
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

// Pinning and the scheduling policy, asked for before the runtime starts its
// threads (which inherit both); mlock is asked for later, once it has.
inline env::Requests request_scheduling(const Options& o) {
  return env::Requests{o.pin, env::pin(o.pin), env::fifo(o.fifo, o.priority), {}, o.priority};
}

inline void lock_memory(const Options& o, env::Requests& requests) {
  requests.mlock = env::mlock(o.mlock);
  for (const std::string& refusal : env::refusals(requests)) std::cerr << "harness: warning: " << refusal << "\n";
}

using Clock = std::chrono::steady_clock;

// Call step() at least min_count times and for at least min_seconds; each
// call's time in ms (from whole nanoseconds, so exact to 6 decimals), and the seconds taken.
template <typename Step>
std::vector<double> run_for(Step& step, int min_count, double min_seconds, double* seconds) {
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

struct Timed {
  std::vector<double> warm, times;
  double warm_seconds = 0, seconds = 0;
  std::string power;  // the results' power section
};

// Warm up, then time with the power rails sampled (rt_power.timed_run).
template <typename Step>
Timed timed_run(Step step, const Options& o) {
  Timed t;
  t.warm = run_for(step, o.warmup, o.warmup_seconds, &t.warm_seconds);
  std::unique_ptr<power::Sampler> sampler = power::start(o.pin);
  t.times = run_for(step, o.iterations, o.min_seconds, &t.seconds);
  t.power = power::finish(std::move(sampler), t.times.size(), t.seconds);
  return t;
}

struct Harness {  // what a harness says about itself in the document
  std::string name;             // results "harness": tvm-cpp, vart
  std::string runtime, runtime_version;
  std::string extra = "{}";     // environment.extra, a JSON object
  std::vector<std::string> notes;
};

inline std::string utc_now() {
  char text[32];
  std::time_t now = std::time(nullptr);
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%S+00:00", std::gmtime(&now));
  return text;
}

inline void write_text(const std::string& path, const std::string& text) {
  if (path.empty()) {
    std::cout << text;
    return;
  }
  std::ofstream file(path);
  file << text;
  if (!file) throw std::runtime_error("cannot write " + path);
}

inline std::string loop_section(size_t iterations, double seconds, int min_iterations, double min_seconds) {
  std::ostringstream out;
  out << "{\"iterations\": " << iterations << ", \"seconds\": " << results::number(seconds)
      << ", \"min_iterations\": " << min_iterations << ", \"min_seconds\": " << results::number(min_seconds);
  return out.str();
}

// Write the results document (--json, else stdout) and the CSV (--csv); the
// exit code, with why the run failed on stderr.
inline int report(const Options& o, const std::string& started_at, const env::Requests& requests, const Harness& h,
                  const Timed& t) {
  const std::vector<double>& times = t.times;
  std::vector<std::string> failed = results::failures(times.size(), times, o.deadline);
  bool valid = static_cast<int64_t>(times.size()) >= results::kValidityMinSamples;
  std::string notes;
  for (const std::string& note : h.notes) notes += (notes.empty() ? "" : ", ") + results::quoted(note);
  std::ostringstream doc;
  doc << "{\"format\": \"ncc-results\", \"version\": 2, \"harness\": " << results::quoted(h.name)
      << ", \"model\": " << results::quoted(o.model.substr(o.model.find_last_of('/') + 1))
      << ", \"started_at\": " << results::quoted(started_at) << ", \"emulated\": false"
      << ", \"valid\": " << (valid ? "true" : "false") << ", \"invalid_reasons\": ["
      << (valid ? "" : results::quoted(failed.front().substr(std::string("run invalid: ").size()))) << "]"
      << ", \"environment\": " << env::describe(o.threads, h.runtime, h.runtime_version, requests, h.extra)
      << ", \"warmup\": " << loop_section(t.warm.size(), t.warm_seconds, o.warmup, o.warmup_seconds) << "}"
      << ", \"run\": " << loop_section(times.size(), t.seconds, o.iterations, o.min_seconds)
      << ", \"seed\": " << (o.inputs.empty() ? std::to_string(o.seed) : "null")
      << ", \"input\": " << (o.inputs.empty() ? "\"random\"" : "\"file\"") << "}"
      << ", " << results::statistics(times, o.deadline)
      << ", \"memory\": {\"peak_rss_bytes\": " << env::peak_rss_bytes()
      << ", \"model_weight_bytes\": null, \"model_activation_bytes\": null}"
      << ", \"power\": " << t.power << ", \"notes\": [" << notes << "], \"times_ms\": [";
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

// run() with any exception as one line on stderr and exit code 1.
template <typename Run>
int guarded(Run run) {
  try {
    return run();
  } catch (const std::exception& err) {
    std::cerr << "harness: error: " << err.what() << "\n";
    return kExitError;
  }
}

}  // namespace rules
