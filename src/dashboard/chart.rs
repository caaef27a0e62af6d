//! Requests per hour over the last 24 hours, by outcome, as an inline SVG bar chart: stacked
//! 2xx (and 1xx/3xx) / 4xx / 5xx per UTC hour. Colours come from the stylesheet's classes (the
//! CSP allows no inline style); each bar has a `<title>` a browser shows on hover.

use std::fmt::Write;

use time::macros::format_description;
use time::OffsetDateTime;

use crate::store::dashboard::HourCount;

/// The 24 UTC hour keys (`2026-12-05T07`, as `request_hours.hour`) ending with `now`'s hour.
pub fn hour_keys(now: OffsetDateTime) -> Vec<String> {
    let fmt = format_description!("[year]-[month]-[day]T[hour]");
    (0..24)
        .rev()
        .map(|back| {
            (now - time::Duration::hours(back))
                .format(&fmt)
                .unwrap_or_default()
        })
        .collect()
}

/// Per hour: (2xx-ish, 4xx, 5xx).
pub fn buckets(keys: &[String], hours: &[HourCount]) -> Vec<[i64; 3]> {
    keys.iter()
        .map(|k| {
            let mut b = [0i64; 3];
            for h in hours.iter().filter(|h| &h.hour == k) {
                let i = match h.class {
                    ..=3 => 0,
                    4 => 1,
                    _ => 2,
                };
                b[i] += h.n;
            }
            b
        })
        .collect()
}

const WIDTH: i64 = 480;
const HEIGHT: i64 = 120;
const BAR: i64 = WIDTH / 24;

/// The chart for `keys` (from `hour_keys`) and a tenant's hourly counts.
pub fn svg(keys: &[String], hours: &[HourCount]) -> String {
    let data = buckets(keys, hours);
    let max = data
        .iter()
        .map(|b| b.iter().sum::<i64>())
        .max()
        .unwrap_or(0)
        .max(1);
    let mut out = String::new();
    let _ = write!(
        out,
        "<svg class=\"chart\" viewBox=\"0 0 {WIDTH} {}\" role=\"img\" \
         aria-label=\"requests per hour, last 24 hours\">",
        HEIGHT + 14
    );
    for (i, (key, b)) in keys.iter().zip(&data).enumerate() {
        let x = i as i64 * BAR;
        let mut y = HEIGHT;
        let _ = write!(
            out,
            "<g><title>{}:00 UTC: {} 2xx, {} 4xx, {} 5xx</title>",
            super::html::text(key),
            b[0],
            b[1],
            b[2]
        );
        for (n, class) in b.iter().zip(["ok", "client", "server"]) {
            if *n == 0 {
                continue;
            }
            // At least one unit tall, so a single failure among thousands still shows.
            let h = (n * HEIGHT / max).max(1);
            y -= h;
            let _ = write!(
                out,
                "<rect class=\"{class}\" x=\"{}\" y=\"{y}\" width=\"{}\" height=\"{h}\"/>",
                x + 1,
                BAR - 2
            );
        }
        out.push_str("</g>");
        if i % 6 == 0 {
            let _ = write!(
                out,
                "<text x=\"{x}\" y=\"{}\">{}h</text>",
                HEIGHT + 12,
                super::html::text(key.get(11..13).unwrap_or(""))
            );
        }
    }
    let _ = write!(
        out,
        "<line x1=\"0\" y1=\"{HEIGHT}\" x2=\"{WIDTH}\" y2=\"{HEIGHT}\"/></svg>"
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn h(hour: &str, class: i64, n: i64) -> HourCount {
        HourCount {
            hour: hour.into(),
            class,
            n,
        }
    }

    #[test]
    fn twenty_four_hours_ending_now() {
        let keys = hour_keys(datetime!(2026-12-05 07:30 UTC));
        assert_eq!(keys.len(), 24);
        assert_eq!(keys[0], "2026-12-04T08");
        assert_eq!(keys[23], "2026-12-05T07");
    }

    #[test]
    fn counts_fall_into_their_hour_and_class() {
        let keys = hour_keys(datetime!(2026-12-05 07:30 UTC));
        let hours = [
            h("2026-12-05T07", 2, 5),
            h("2026-12-05T07", 3, 1),
            h("2026-12-05T07", 4, 2),
            h("2026-12-05T06", 5, 1),
            h("2026-12-01T06", 5, 9),
        ];
        let b = buckets(&keys, &hours);
        assert_eq!(b[23], [6, 2, 0]);
        assert_eq!(b[22], [0, 0, 1]);
        assert_eq!(b.iter().map(|x| x.iter().sum::<i64>()).sum::<i64>(), 9);
        let svg = svg(&keys, &hours);
        assert_eq!(svg.matches("<rect").count(), 3);
        assert!(svg.contains("07:00 UTC: 6 2xx, 2 4xx, 0 5xx"), "{svg}");
    }
}
