//! Telemetry of the running appliance: the metrics registry and the provisioning-log queue.
//!
//! Services of the appliance, not of the HTTP layer: `app` owns them, `http` feeds them per
//! request, `maintenance` and the admin listener read them. Neither speaks SQL: the directory
//! gauges and the log rows are read and written through `store`.

pub mod metrics;
pub mod reqlog;
