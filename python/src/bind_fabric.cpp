// Python bindings of the fabric layer (submodule trnsim._trnsim.fabric): systems as data, the
// analytical collective cost model (the numbers `trnsim collective --json` prints) and, where
// the cluster runtime is built, multi-chip runs with real data exchange.
//
// Errors: a core Status raises its class from errors.cpp (fabric.FabricError is their base, with
// .code, .where and .detail); bad arguments and configs are also ValueError.
#include "bind_fabric.h"

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "chip_io.h"
#include "errors.h"
#include "trnsim/arch/chip_config.h"
#include "trnsim/arch/system_config.h"
#include "trnsim/fabric/cluster.h"
#include "trnsim/fabric/collective.h"
#include "trnsim/fabric/transport.h"
#include "trnsim/isa/binary.h"
#include "trnsim/numerics/dtype.h"
#include "trnsim/profile/trace.h"

namespace py = pybind11;
using namespace trnsim;

namespace {
using pybind::bitsDtype;
using pybind::check;
using pybind::PyCluster;
using pybind::unwrap;
using pybind::valueDtype;

// ---- cluster I/O ---------------------------------------------------------------------------

const isa::TensorDecl& declOf(const PyCluster& c, uint32_t rank, const std::string& name) {
  if (rank >= c.cluster.size())
    throw py::value_error("rank " + std::to_string(rank) + " is outside the cluster's " +
                          std::to_string(c.cluster.size()) + " ranks");
  const isa::Program& p = c.cluster.program(rank);
  const uint32_t t = p.findTensor(name);
  if (t == isa::kNoTensor)
    throw py::value_error("program '" + p.name + "' of rank " + std::to_string(rank) +
                          " has no tensor '" + name + "'");
  return p.tensors[t];
}

/// Float tensors take any numbers (rounded to the dtype, RNE, as sim.Chip.write does);
/// integer tensors take values of their type.
void clusterWrite(PyCluster& c, uint32_t rank, const std::string& name, const py::array& data) {
  const isa::TensorDecl& d = declOf(c, rank, name);
  std::vector<std::byte> bytes;
  if (numerics::isFloat(d.dtype)) {
    auto arr = py::array_t<float, py::array::c_style | py::array::forcecast>::ensure(data);
    if (!arr) throw py::value_error("expected an array of numbers");
    if (arr.size() != d.numElements())
      throw py::value_error("tensor '" + name + "' of rank " + std::to_string(rank) + " takes " +
                            std::to_string(d.numElements()) + " values; got " +
                            std::to_string(arr.size()));
    bytes.resize(size_t(arr.size()) * numerics::dtypeSize(d.dtype));
    numerics::convertFromFloat(d.dtype, arr.data(), bytes.data(), size_t(arr.size()));
  } else {
    py::array arr = py::array::ensure(
        py::module_::import("numpy").attr("ascontiguousarray")(data, valueDtype(d.dtype)));
    bytes.resize(size_t(arr.nbytes()));
    std::memcpy(bytes.data(), arr.data(), bytes.size());
  }
  check(c.cluster.write(rank, name, bytes));
}

py::array clusterRead(const PyCluster& c, uint32_t rank, const std::string& name, bool bits) {
  const isa::TensorDecl& d = declOf(c, rank, name);
  std::vector<py::ssize_t> shape(d.shape.begin(), d.shape.end());
  std::vector<std::byte> raw = unwrap(c.cluster.read(rank, name));
  if (numerics::isFloat(d.dtype) && !bits) {
    py::array_t<float> out(shape);
    const size_t n = raw.size() / numerics::dtypeSize(d.dtype);
    if (int64_t(n) != d.numElements()) throw py::value_error("short read of '" + name + "'");
    numerics::convertToFloat(d.dtype, raw.data(), out.mutable_data(), n);
    return out;
  }
  py::array out(bits ? bitsDtype(d.dtype) : valueDtype(d.dtype), shape);
  if (size_t(out.nbytes()) != raw.size()) throw py::value_error("short read of '" + name + "'");
  std::memcpy(out.mutable_data(), raw.data(), raw.size());
  return out;
}

py::dict resultToDict(const PyCluster& c, const fabric::ClusterResult& r) {
  py::dict d;
  d["simulated_ns"] = r.simulatedNs;
  d["compute_ns"] = r.computeNs;
  d["exposed_comm_ns"] = r.exposedCommNs;
  d["comm_ns"] = r.commNs;
  d["comm_tax"] = r.commTax;
  d["overlap"] = r.overlap;
  d["supersteps"] = r.supersteps;
  d["host_seconds"] = r.hostSeconds;
  d["bytes_reduced"] = r.bytesReduced;
  d["system"] = c.cluster.system().name;
  d["chip"] = c.cluster.chip().name;
  py::list ranks;
  for (const fabric::RankResult& rr : r.ranks) {
    py::dict x;
    x["simulated_ns"] = rr.run.simulatedNs;
    x["instructions"] = rr.run.instructions;
    x["compute_ns"] = rr.computeNs;
    x["exposed_comm_ns"] = rr.exposedCommNs;
    ranks.append(x);
  }
  d["ranks"] = ranks;
  py::list cols;
  for (const fabric::CollectiveRecord& cr : r.collectives) {
    py::dict x;
    x["op"] = std::string(fabric::opName(cr.op));
    x["instruction"] = cr.instruction;
    x["ranks"] = cr.ranks;
    x["bytes"] = cr.bytes;
    x["start_ns"] = cr.startNs;
    x["end_ns"] = cr.endNs;
    x["algorithm"] = std::string(fabric::algorithmName(cr.algorithm));
    x["algbw_gbps"] = cr.algbwGbps;
    x["busbw_gbps"] = cr.busbwGbps;
    cols.append(x);
  }
  d["collectives"] = cols;
  return d;
}

fabric::TransportKind transportOf(const std::string& s) {
  if (s == "auto") return fabric::TransportKind::kAuto;
  if (s == "local") return fabric::TransportKind::kLocal;
  if (s == "mpi") return fabric::TransportKind::kMpi;
  throw py::value_error("transport must be 'auto', 'local' or 'mpi', not '" + s + "'");
}

py::object jsonLoads(const std::string& text) {
  return py::module_::import("json").attr("loads")(text);
}

py::dict costToDict(const fabric::CollectiveCost& c, fabric::CollectiveOp op, uint64_t bytes,
                    const arch::SystemConfig& system, uint64_t chips) {
  py::dict d;
  d["system"] = system.name;
  d["op"] = std::string(fabric::opName(op));
  d["bytes"] = bytes;
  d["chips"] = chips;
  d["ranks"] = c.ranks;
  d["time_s"] = c.timeS;
  d["algorithm"] = std::string(fabric::algorithmName(c.algorithm));
  d["algbw_gbps"] = c.algbwGbps;
  d["busbw_gbps"] = c.busbwGbps;
  py::list phases;
  for (const auto& p : c.phases) {
    py::dict ph;
    ph["name"] = p.name;
    ph["time_s"] = p.timeS;
    ph["steps"] = p.steps;
    ph["bytes_per_rank"] = p.bytesPerRank;
    phases.append(ph);
  }
  d["phases"] = phases;
  py::list cands;
  for (const auto& [a, t] : c.candidates) {
    py::dict cd;
    cd["algorithm"] = std::string(fabric::algorithmName(a));
    cd["time_s"] = t;
    cands.append(cd);
  }
  d["candidates"] = cands;
  return d;
}

struct PyModel {
  arch::SystemConfig system;
  uint64_t chips = 0;
  fabric::CollectiveModel model;
};

py::dict modelEstimate(const PyModel& m, const std::string& opName, uint64_t bytes,
                       const std::string& algorithm, uint64_t groupSize, uint64_t groupStride,
                       bool concurrentGroups) {
  const fabric::CollectiveOp op = unwrap(fabric::parseOp(opName));
  const fabric::Algorithm algo = unwrap(fabric::parseAlgorithm(algorithm));
  if (groupStride == 0) throw py::value_error("group_stride must be at least 1");
  fabric::CollectiveRequest req;
  req.op = op;
  req.bytes = bytes;
  req.algorithm = algo;
  req.group.size = groupSize;
  req.group.stride = groupStride;
  req.group.concurrentGroups = concurrentGroups;
  const fabric::CollectiveCost cost = unwrap(m.model.estimate(req));
  return costToDict(cost, op, bytes, m.system, m.chips);
}

}  // namespace

void bindFabric(py::module_& m) {
  auto sub = m.def_submodule(
      "fabric", "Systems, the collective cost model and multi-chip runs (the fabric layer)");
  sub.attr("FabricError") = pybind::errorClass(ErrorCode::kOk);  // errors.cpp: every core error

  sub.def("builtin_systems", &arch::builtinSystemNames,
          "Names of the systems built into trnsim (configs/systems/*.json).");
  sub.def(
      "load_system",
      [](const std::string& nameOrPath) {
        return jsonLoads(arch::systemToJson(unwrap(arch::loadSystem(nameOrPath))));
      },
      py::arg("name_or_path"),
      "A built-in system ('trn2.48xlarge', ...) or a .json system config, as a dict of plain "
      "values (what `trnsim collective` builds its topology from). Raises ValueError naming the "
      "file and key on a bad config.");

  sub.def("mpi_built_in", &fabric::mpiBuiltIn,
          "Whether this trnsim was built with MPI (multi-process cluster runs under mpirun).");
  sub.def("launched_by_mpi", &fabric::launchedByMpi, "Whether this process was started by mpirun.");

  py::class_<PyCluster, std::shared_ptr<PyCluster>>(
      sub, "Cluster",
      "N simulated chips joined by a system's fabric, exchanging real data through the "
      "collective instructions (one rank = one chip running its program on core 0). Under "
      "mpirun each process simulates a slice of the ranks (local ranks).")
      .def(py::init([](const std::string& chip, uint32_t chips, const std::string& system,
                       uint32_t threads, const std::string& transport) {
             const arch::ChipConfig cc = unwrap(arch::loadChip(chip));
             std::optional<arch::SystemConfig> sys;
             if (!system.empty()) sys = unwrap(arch::loadSystem(system));
             fabric::ClusterOptions o;
             o.threads = threads;
             o.transport = transportOf(transport);
             fabric::Cluster c =
                 unwrap(fabric::Cluster::create(cc, sys ? &*sys : nullptr, chips, o));
             return std::make_shared<PyCluster>(PyCluster{std::move(c), std::nullopt});
           }),
           py::arg("chip"), py::arg("chips"), py::arg("system") = "", py::arg("threads") = 0,
           py::arg("transport") = "auto",
           "`chips` chips of `chip` ('trn2', ...); `system` names the system whose fabric "
           "times the collectives ('' = the chip's default); threads 0 = every host core; "
           "transport 'auto' (MPI under mpirun when built with it), 'local' or 'mpi'.")
      .def_property_readonly("size", [](const PyCluster& c) { return c.cluster.size(); })
      .def_property_readonly("first_local_rank",
                             [](const PyCluster& c) { return c.cluster.firstLocalRank(); })
      .def_property_readonly("end_local_rank",
                             [](const PyCluster& c) { return c.cluster.endLocalRank(); })
      .def("is_local", [](const PyCluster& c, uint32_t r) { return c.cluster.isLocal(r); })
      .def_property_readonly("process", [](const PyCluster& c) { return c.cluster.process(); })
      .def_property_readonly("processes", [](const PyCluster& c) { return c.cluster.processes(); })
      .def_property_readonly("system", [](const PyCluster& c) { return c.cluster.system().name; })
      .def_property_readonly("chip", [](const PyCluster& c) { return c.cluster.chip().name; })
      .def(
          "load_file",
          [](PyCluster& c, const std::string& path, std::optional<uint32_t> rank) {
            isa::Program p = unwrap(isa::loadProgramFile(path));
            if (rank)
              check(c.cluster.load(*rank, std::move(p)));
            else
              check(c.cluster.loadAll(p));
          },
          py::arg("path"), py::arg("rank") = py::none(),
          "Loads a program file (text or binary) on `rank`, or on every rank (SPMD)")
      .def("write", &clusterWrite, py::arg("rank"), py::arg("name"), py::arg("data"),
           "Writes an array into a local rank's HBM tensor (floats rounded to its dtype, RNE)")
      .def(
          "read",
          [](const PyCluster& c, uint32_t rank, const std::string& name) {
            return clusterRead(c, rank, name, false);
          },
          py::arg("rank"), py::arg("name"),
          "A local rank's tensor: float32 for float dtypes, the integer type otherwise")
      .def(
          "read_bits",
          [](const PyCluster& c, uint32_t rank, const std::string& name) {
            return clusterRead(c, rank, name, true);
          },
          py::arg("rank"), py::arg("name"), "A local rank's tensor as its stored bits")
      .def(
          "run",
          [](PyCluster& c, bool values, bool events, bool detectUninitialized, uint64_t seed) {
            fabric::ClusterRunOptions o;
            o.computeValues = values;
            o.recordEvents = events;
            o.detectUninitialized = detectUninitialized;
            o.seed = seed;
            Expected<fabric::ClusterResult> r = Status();
            {
              py::gil_scoped_release release;
              r = c.cluster.run(o);
            }
            c.last = unwrap(std::move(r));
            return resultToDict(c, *c.last);
          },
          py::arg("values") = true, py::arg("events") = false,
          py::arg("detect_uninitialized") = true, py::arg("seed") = 0,
          "Runs every rank to the end. Returns {simulated_ns, compute_ns, exposed_comm_ns, "
          "comm_ns, comm_tax, overlap, supersteps, host_seconds, bytes_reduced, ranks: "
          "[{simulated_ns, instructions, compute_ns, exposed_comm_ns}], collectives: [{op, "
          "instruction, ranks, bytes, start_ns, end_ns, algorithm, algbw_gbps, busbw_gbps}]}")
      .def(
          "output_hashes", [](const PyCluster& c) { return unwrap(c.cluster.outputHashes()); },
          "Per rank, FNV-1a 64 of its output HBM tensors (compares runs across layouts)")
      .def(
          "write_trace",
          [](const PyCluster& c, const std::string& path) {
            if (!c.last) throw py::value_error("no run to trace yet: call run(events=True) first");
            profile::TraceInput in;
            for (uint32_t r = 0; r < c.last->ranks.size(); ++r) {
              profile::ChipTrace t;
              t.name = "rank " + std::to_string(r);
              t.timeline = &c.last->ranks[r].run.timeline;
              t.programs = {&c.cluster.program(r)};
              t.config = &c.cluster.chip();
              in.chips.push_back(std::move(t));
            }
            check(profile::writeTrace(path, in));
          },
          py::arg("path"), "Perfetto/Chrome trace of the last run: one process per rank");

  sub.def(
      "busbw_factor",
      [](const std::string& op, uint64_t n) {
        return fabric::busBandwidthFactor(unwrap(fabric::parseOp(op)), n);
      },
      py::arg("op"), py::arg("ranks"),
      "nccl-tests bus-bandwidth factor of an op on n ranks (2(n-1)/n for all_reduce, ...).");

  // A model built once and asked many times (what a planner written in Python wants:
  // estimate() below rebuilds it per call, ~2 ms).
  py::class_<PyModel, std::shared_ptr<PyModel>>(
      sub, "CollectiveModel",
      "The collective cost model of `chips` chips of `system` (default: one scale-up domain), "
      "built once; estimate() is then cheap.")
      .def(py::init([](const std::string& systemName, std::optional<uint64_t> chips) {
             arch::SystemConfig system = unwrap(arch::loadSystem(systemName));
             const uint64_t n = chips.value_or(system.chipsPerDomain());
             fabric::CollectiveModel model = unwrap(fabric::CollectiveModel::create(system, n));
             return std::make_shared<PyModel>(PyModel{std::move(system), n, std::move(model)});
           }),
           py::arg("system"), py::arg("chips") = py::none())
      .def_property_readonly("chips", [](const PyModel& pm) { return pm.chips; })
      .def_property_readonly("ranks", [](const PyModel& pm) { return pm.model.ranks(); })
      .def_property_readonly("system", [](const PyModel& pm) { return pm.system.name; })
      .def("estimate", &modelEstimate, py::arg("op"), py::arg("bytes"),
           py::arg("algorithm") = "auto", py::arg("group_size") = 0, py::arg("group_stride") = 1,
           py::arg("concurrent_groups") = true,
           "As fabric.estimate, on this model's system and chips.");

  sub.def(
      "estimate",
      [](const std::string& systemName, const std::string& opName, uint64_t bytes,
         std::optional<uint64_t> chips, const std::string& algorithm, uint64_t groupSize,
         uint64_t groupStride, bool concurrentGroups) {
        arch::SystemConfig system = unwrap(arch::loadSystem(systemName));
        const uint64_t n = chips.value_or(system.chipsPerDomain());
        fabric::CollectiveModel model = unwrap(fabric::CollectiveModel::create(system, n));
        const PyModel pm{std::move(system), n, std::move(model)};
        return modelEstimate(pm, opName, bytes, algorithm, groupSize, groupStride,
                             concurrentGroups);
      },
      py::arg("system"), py::arg("op"), py::arg("bytes"), py::arg("chips") = py::none(),
      py::arg("algorithm") = "auto", py::arg("group_size") = 0, py::arg("group_stride") = 1,
      py::arg("concurrent_groups") = true,
      "Time of one collective from the analytical fabric model: `bytes` per rank (nccl-tests "
      "convention), on `chips` chips of `system` (default: one scale-up domain), over a group "
      "of `group_size` ranks (0 = all) spaced `group_stride` apart. Returns a dict: time_s, "
      "algorithm, algbw_gbps, busbw_gbps, ranks, phases [{name, time_s, steps, "
      "bytes_per_rank}], candidates [{algorithm, time_s}] (empty when one was named).");
}
