// Reading and writing NumPy .npy files (format 1.0/2.0/3.0, little-endian,
// C order): the harness's input and output format.
#pragma once

#include <cstdint>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace npy {

struct Array {
  std::string descr;  // numpy dtype string, e.g. "<f4", "|i1"
  std::vector<int64_t> shape;
  std::vector<char> data;
};

inline std::string header_value(const std::string& header, const std::string& key) {
  size_t at = header.find("'" + key + "'");
  if (at == std::string::npos) throw std::runtime_error("npy header has no '" + key + "'");
  at = header.find(':', at) + 1;
  while (header[at] == ' ') ++at;
  size_t end = at;
  if (header[at] == '\'') {
    end = header.find('\'', at + 1) + 1;
  } else if (header[at] == '(') {
    end = header.find(')', at) + 1;
  } else {
    end = header.find_first_of(",}", at);
  }
  return header.substr(at, end - at);
}

inline int64_t element_count(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

inline size_t item_size(const std::string& descr) { return std::stoul(descr.substr(2)); }

inline Array load(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot open " + path);
  char magic[8];
  in.read(magic, 8);
  if (!in || std::memcmp(magic, "\x93NUMPY", 6) != 0) throw std::runtime_error(path + " is not a .npy file");
  uint32_t header_len = 0;
  if (magic[6] == 1) {
    uint8_t len[2];
    in.read(reinterpret_cast<char*>(len), 2);
    header_len = len[0] | (len[1] << 8);
  } else {
    uint8_t len[4];
    in.read(reinterpret_cast<char*>(len), 4);
    header_len = len[0] | (len[1] << 8) | (len[2] << 16) | (static_cast<uint32_t>(len[3]) << 24);
  }
  std::string header(header_len, '\0');
  in.read(&header[0], header_len);
  Array array;
  array.descr = header_value(header, "descr");
  array.descr = array.descr.substr(1, array.descr.size() - 2);
  if (header_value(header, "fortran_order") != "False") throw std::runtime_error(path + " is not in C order");
  if (array.descr[0] == '>') throw std::runtime_error(path + " is big-endian");
  std::string dims = header_value(header, "shape");
  std::stringstream list(dims.substr(1, dims.size() - 2));
  for (std::string dim; std::getline(list, dim, ',');) {
    if (dim.find_first_not_of(' ') != std::string::npos) array.shape.push_back(std::stoll(dim));
  }
  array.data.resize(element_count(array.shape) * item_size(array.descr));
  in.read(array.data.data(), array.data.size());
  if (!in) throw std::runtime_error(path + " is truncated");
  return array;
}

inline void save(const std::string& path, const std::string& descr, const std::vector<int64_t>& shape,
                 const void* data, size_t bytes) {
  std::string dims;
  for (int64_t d : shape) dims += std::to_string(d) + ",";
  if (shape.size() > 1) dims.pop_back();
  std::string header = "{'descr': '" + descr + "', 'fortran_order': False, 'shape': (" + dims + "), }";
  size_t total = 10 + header.size() + 1;
  header.append((64 - total % 64) % 64, ' ');
  header += '\n';
  std::ofstream out(path, std::ios::binary);
  if (!out) throw std::runtime_error("cannot write " + path);
  uint16_t len = static_cast<uint16_t>(header.size());
  out.write("\x93NUMPY\x01\x00", 8);
  out.put(static_cast<char>(len & 0xff));
  out.put(static_cast<char>(len >> 8));
  out.write(header.data(), header.size());
  out.write(static_cast<const char*>(data), bytes);
  if (!out) throw std::runtime_error("cannot write " + path);
}

}  // namespace npy
