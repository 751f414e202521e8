//! The slow inventory, through `sysinfo`: host name, OS, kernel, CPU model and count, total
//! memory, temperatures, and (opt-in) the processes using the most memory.
//!
//! Read on the background thread every few minutes at most; nothing here is on the
//! per-second path.

use crate::CollectError;
use sysinfo::{
    Components, CpuRefreshKind, MemoryRefreshKind, ProcessRefreshKind, RefreshKind, System,
};

/// Processes reported, by resident memory, when processes are asked for; the rest are summed
/// under `_other` so that the label set stays bounded.
pub const TOP_PROCESSES: usize = 20;

/// One process name's use (processes of the same name summed, as process-exporter groups).
#[derive(Debug, Clone, PartialEq)]
pub struct ProcessUse {
    pub name: String,
    pub count: u64,
    pub resident_bytes: u64,
    /// Seconds of CPU since each started, summed.
    pub cpu_seconds: f64,
}

/// What the host is.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Inventory {
    pub hostname: String,
    pub os: String,
    pub kernel: String,
    pub cpu_model: String,
    pub cpus: usize,
    pub memory_bytes: u64,
    /// Sensor label and degrees Celsius, where the host has sensors.
    pub temperatures: Vec<(String, f64)>,
    /// Empty unless processes were asked for.
    pub processes: Vec<ProcessUse>,
}

/// Keeps `sysinfo`'s state between readings (CPU and process figures need two).
pub struct InventoryReader {
    system: System,
    components: Option<Components>,
    processes: bool,
}

impl std::fmt::Debug for InventoryReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InventoryReader")
            .field("processes", &self.processes)
            .finish_non_exhaustive()
    }
}

impl InventoryReader {
    /// `processes`: also report the processes using the most memory.
    /// Fails only where `sysinfo` cannot read the system at all; a host without sensors has
    /// no temperatures.
    pub fn new(processes: bool) -> Result<InventoryReader, CollectError> {
        let system = System::new_with_specifics(
            RefreshKind::nothing()
                .with_cpu(CpuRefreshKind::nothing())
                .with_memory(MemoryRefreshKind::nothing().with_ram()),
        )
        .map_err(|e| CollectError::Inventory(e.to_string()))?;
        Ok(InventoryReader {
            system,
            components: Components::new_with_refreshed_list().ok(),
            processes,
        })
    }

    pub fn read(&mut self) -> Inventory {
        self.system
            .refresh_memory_specifics(MemoryRefreshKind::nothing().with_ram());
        if let Some(c) = &mut self.components {
            c.refresh(true);
        }
        let cpus = self.system.cpus();
        let mut inventory = Inventory {
            hostname: System::host_name().unwrap_or_default(),
            os: System::long_os_version().unwrap_or_default(),
            kernel: System::kernel_version().unwrap_or_default(),
            cpu_model: cpus
                .first()
                .map(|c| c.brand().trim().to_owned())
                .unwrap_or_default(),
            cpus: cpus.len(),
            memory_bytes: self.system.total_memory(),
            temperatures: self
                .components
                .iter()
                .flatten()
                .filter_map(|c| Some((c.label().to_owned(), f64::from(c.temperature()?))))
                .filter(|(_, t)| t.is_finite())
                .fold(Vec::new(), |mut seen: Vec<(String, f64)>, (label, t)| {
                    // One series per sensor label: the first reading of a repeated label.
                    if !seen.iter().any(|(l, _)| *l == label) {
                        seen.push((label, t));
                    }
                    seen
                }),
            processes: Vec::new(),
        };
        if self.processes {
            self.system.refresh_processes_specifics(
                sysinfo::ProcessesToUpdate::All,
                true,
                ProcessRefreshKind::nothing().with_memory().with_cpu(),
            );
            let mut by_name: std::collections::HashMap<String, ProcessUse> = Default::default();
            // sysinfo lists threads too; they share their process' memory.
            let processes = self.system.processes().values();
            for p in processes.filter(|p| p.thread_kind() != Some(sysinfo::ThreadKind::Userland)) {
                let name = p.name().to_string_lossy().into_owned();
                let e = by_name.entry(name.clone()).or_insert(ProcessUse {
                    name,
                    count: 0,
                    resident_bytes: 0,
                    cpu_seconds: 0.0,
                });
                e.count += 1;
                e.resident_bytes += p.memory();
                e.cpu_seconds += p.accumulated_cpu_time() as f64 / 1000.0;
            }
            inventory.processes = top(by_name.into_values().collect(), TOP_PROCESSES);
        }
        inventory
    }
}

/// The `n` largest by resident memory (ties by name), the rest summed as `_other`.
pub fn top(mut all: Vec<ProcessUse>, n: usize) -> Vec<ProcessUse> {
    all.sort_by(|a, b| {
        b.resident_bytes
            .cmp(&a.resident_bytes)
            .then_with(|| a.name.cmp(&b.name))
    });
    if all.len() > n {
        let rest = all.split_off(n);
        all.push(rest.into_iter().fold(
            ProcessUse {
                name: "_other".into(),
                count: 0,
                resident_bytes: 0,
                cpu_seconds: 0.0,
            },
            |mut o, p| {
                o.count += p.count;
                o.resident_bytes += p.resident_bytes;
                o.cpu_seconds += p.cpu_seconds;
                o
            },
        ));
    }
    all
}
