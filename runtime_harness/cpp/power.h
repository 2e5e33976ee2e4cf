// Power rails under /sys/class/hwmon, sampled on a thread while a run is
// timed: the C++ form of runtime_harness/rt_power.py, with the same
// discovery, the same rules and the same results section.
//
// A rail is one channel of a current/power monitor: INA3221 (Jetson), INA226
// and its INA2xx kin, or a PMBus regulator (ZCU104). Its power is
// power<N>_input (microwatts) or, on a chip that reports no power (INA3221),
// curr<N>_input (mA) times in<N>_input (mV). Its name is the channel's label
// file, else device/hwmonK/channel. The run's power is the rail labelled as
// the board's total input (VDD_IN, POM_5V_IN, VIN), else the sum of all
// rails; a PMBus device's input rails (pin*) are dropped when it also reports
// outputs. NCC_HWMON_ROOT replaces /sys/class/hwmon.
#pragma once

#include <dirent.h>
#include <pthread.h>
#include <sched.h>
#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <regex>
#include <set>
#include <stdexcept>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "env.h"
#include "results.h"

namespace power {

constexpr const char* kRootEnv = "NCC_HWMON_ROOT";
constexpr const char* kRoot = "/sys/class/hwmon";
constexpr const char* kTotalLabels[] = {"VDD_IN", "POM_5V_IN", "VIN"};
constexpr int kIntervalMs = 20;

inline std::string root() {
  const char* value = std::getenv(kRootEnv);
  return value && *value ? value : kRoot;
}

inline bool exists(const std::string& path) {
  struct stat info {};
  return stat(path.c_str(), &info) == 0;
}

inline std::vector<std::string> entries(const std::string& folder) {  // sorted, as Python's sorted(glob)
  std::vector<std::string> names;
  if (DIR* dir = opendir(folder.c_str())) {
    while (dirent* entry = readdir(dir)) names.push_back(entry->d_name);
    closedir(dir);
  }
  std::sort(names.begin(), names.end());
  return names;
}

inline double read_number(const std::string& path) {  // throws what the sampler records as the rail's error
  std::optional<std::string> text = env::read_text(path);
  if (!text) throw std::runtime_error("cannot read " + path + ": " + std::strerror(errno));
  size_t used = 0;
  double value = 0;
  try {
    value = std::stod(*text, &used);
  } catch (const std::logic_error&) {
  }
  if (used == 0 || used != text->size()) throw std::invalid_argument("not a number in " + path + ": '" + *text + "'");
  return value;
}

struct Rail {
  std::string label, device, path;
  std::string power, current, voltage;  // files; power empty for a current x voltage rail

  double read_w() const {
    if (!power.empty()) return read_number(power) / 1e6;
    return read_number(current) * read_number(voltage) / 1e6;
  }
};

inline std::string lower(std::string text) {
  for (char& c : text) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return text;
}

inline std::vector<Rail> device_rails(const std::string& folder, const std::string& device) {
  auto path = [&](const std::string& name) { return exists(folder + "/" + name) ? folder + "/" + name : ""; };
  static const std::regex input("^(power|curr)([0-9]+)_input$");
  std::vector<std::pair<std::string, int>> inputs;
  for (const std::string& name : entries(folder)) {
    std::smatch m;
    if (std::regex_match(name, m, input)) inputs.emplace_back(m[1], std::stoi(m[2]));
  }
  // a chip that reports power (INA2xx, PMBus) numbers its curr/in channels otherwise; only INA3221 needs the product
  std::string kind = std::any_of(inputs.begin(), inputs.end(), [](auto& i) { return i.first == "power"; })
                         ? "power" : "curr";
  std::set<int> channels;
  for (const auto& [k, i] : inputs)
    if (k == kind) channels.insert(i);
  std::string base = folder.substr(folder.find_last_of('/') + 1);
  std::vector<Rail> rails;
  for (int i : channels) {
    std::string n = std::to_string(i);
    Rail rail{"", device, folder, "", "", ""};
    std::vector<std::string> labels;
    if (kind == "power") {
      labels = {"power" + n + "_label"};
      rail.power = path("power" + n + "_input");
    } else if (env::read_text(folder + "/in" + n + "_enable").value_or("") != "0" && !path("in" + n + "_input").empty()) {
      labels = {"curr" + n + "_label", "in" + n + "_label"};
      rail.current = path("curr" + n + "_input");
      rail.voltage = path("in" + n + "_input");
    } else {
      continue;  // a disabled INA3221 channel
    }
    for (const std::string& file : labels) {
      if (path(file).empty()) continue;
      rail.label = env::read_text(path(file)).value_or("");
      break;
    }
    if (rail.label.empty()) rail.label = device + "/" + base + "/" + n;
    rails.push_back(rail);
  }
  auto starts = [](const Rail& r, const char* prefix) { return lower(r.label).rfind(prefix, 0) == 0; };
  if (std::any_of(rails.begin(), rails.end(), [&](const Rail& r) { return starts(r, "pout"); }))
    rails.erase(std::remove_if(rails.begin(), rails.end(), [&](const Rail& r) { return starts(r, "pin"); }),
                rails.end());
  return rails;
}

inline std::vector<Rail> discover(const std::string& folder) {
  static const std::regex sensors("^(ina2[0-9][0-9]|ina2xx|ina3221|pmbus|irps[0-9]+|ir3[0-9]+|ucd9[0-9]+|tps5[0-9]+|max20[0-9]+)");
  static const std::regex hwmon("^hwmon.*");
  std::vector<Rail> rails;
  for (const std::string& name : entries(folder)) {
    if (!std::regex_match(name, hwmon)) continue;
    std::string device = env::read_text(folder + "/" + name + "/name").value_or("");
    if (!device.empty() && std::regex_search(device, sensors)) {
      std::vector<Rail> found = device_rails(folder + "/" + name, device);
      rails.insert(rails.end(), found.begin(), found.end());
    }
  }
  return rails;
}

// Reads every rail each interval until stopped: once at start, once at stop.
class Sampler {
 public:
  Sampler(std::vector<Rail> rails, std::vector<int> avoid_cpus)
      : rails_(std::move(rails)), sums_(rails_.size()), counts_(rails_.size()) {
    thread_ = std::thread([this, avoid = std::move(avoid_cpus)] { run(avoid); });
  }
  ~Sampler() { stop(); }

  void stop() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stopping_ = true;
    }
    wake_.notify_all();
    if (thread_.joinable()) thread_.join();
  }

  // the results' power section for a run of `iterations` in `seconds`
  std::string section(size_t iterations, double seconds) {
    stop();
    std::ostringstream rails;
    std::optional<size_t> total;
    double sum = 0;
    long long samples = 0;
    bool any = false;
    for (size_t i = 0; i < rails_.size(); ++i) {
      std::optional<double> average;
      if (counts_[i]) average = std::round(sums_[i] / counts_[i] * 1e6) / 1e6;
      rails << (i ? ", " : "") << "{\"label\": " << results::quoted(rails_[i].label)
            << ", \"device\": " << results::quoted(rails_[i].device) << ", \"path\": " << results::quoted(rails_[i].path)
            << ", \"samples\": " << counts_[i] << ", \"average_w\": " << results::optional_number(average) << "}";
      if (!average) continue;
      any = true;
      sum += *average;
      samples = std::max(samples, counts_[i]);
      std::string upper = rails_[i].label;
      for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
      if (!total && std::any_of(std::begin(kTotalLabels), std::end(kTotalLabels),
                                [&](const char* l) { return upper == l; }))
        total = i;
    }
    if (!any) {
      std::string reasons;
      for (const auto& [label, error] : errors_) reasons += (reasons.empty() ? "" : "; ") + label + ": " + error;
      return absent("every rail failed to read: " + reasons);
    }
    double average_w = total ? std::round(sums_[*total] / counts_[*total] * 1e6) / 1e6 : sum;
    std::optional<double> energy;
    if (iterations) energy = average_w * seconds / iterations;
    std::ostringstream out;
    out << "{\"available\": true, \"source\": \"hwmon\", \"total\": "
        << results::quoted(total ? rails_[*total].label : "sum") << ", \"average_w\": " << results::number(average_w)
        << ", \"samples\": " << samples << ", \"interval_ms\": " << results::number(kIntervalMs)
        << ", \"energy_per_inference_j\": " << (energy ? results::number(*energy, 9) : "null")
        << ", \"rails\": [" << rails.str() << "]}";
    return out.str();
  }

  static std::string absent(const std::string& reason) {
    return "{\"available\": false, \"reason\": " + results::quoted(reason) + "}";
  }

 private:
  void run(const std::vector<int>& avoid_cpus) {
    step_aside(avoid_cpus);
    sample();
    std::unique_lock<std::mutex> lock(mutex_);
    while (!wake_.wait_for(lock, std::chrono::milliseconds(kIntervalMs), [this] { return stopping_; })) {
      lock.unlock();
      sample();
      lock.lock();
    }
    lock.unlock();
    sample();
  }

  void sample() {
    for (size_t i = 0; i < rails_.size(); ++i) {
      try {
        sums_[i] += rails_[i].read_w();
        ++counts_[i];
      } catch (const std::exception& err) {
        errors_[rails_[i].label] = err.what();
      }
    }
  }

  // Keep the sampler off the CPUs the run is pinned to, and out of SCHED_FIFO,
  // which it inherits from the harness; both only when the system allows.
  static void step_aside(const std::vector<int>& avoid_cpus) {
    std::vector<int> others;
    for (int cpu : env::affinity())
      if (std::find(avoid_cpus.begin(), avoid_cpus.end(), cpu) == avoid_cpus.end()) others.push_back(cpu);
    if (!avoid_cpus.empty() && !others.empty()) {
      cpu_set_t set;
      CPU_ZERO(&set);
      for (int cpu : others) CPU_SET(cpu, &set);
      sched_setaffinity(0, sizeof set, &set);  // 0: this thread
    }
    sched_param param{};
    pthread_setschedparam(pthread_self(), SCHED_OTHER, &param);
  }

  std::vector<Rail> rails_;
  std::vector<double> sums_;
  std::vector<long long> counts_;
  std::map<std::string, std::string> errors_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::thread thread_;
};

// A running Sampler, or none when there is no rail to read.
inline std::unique_ptr<Sampler> start(const std::vector<int>& avoid_cpus) {
  std::vector<Rail> rails = discover(root());
  if (rails.empty()) return nullptr;
  return std::make_unique<Sampler>(std::move(rails), avoid_cpus);
}

// Stop `sampler` and give the results' power section.
inline std::string finish(std::unique_ptr<Sampler> sampler, size_t iterations, double seconds) {
  if (!sampler) return Sampler::absent("no INA2xx, INA3221 or PMBus sensor under " + root());
  return sampler->section(iterations, seconds);
}

}  // namespace power
