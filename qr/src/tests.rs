//! Every code is read back by an independent decoder (rqrr) from pixels:
//! the module matrix, the SVG's own drawing and the terminal's text.

use std::path::PathBuf;

use ren3_testkit::qr::{read_modules, svg_modules, terminal_modules};

use super::*;

/// The vendor's portal as an operator would configure it.
const PORTAL: &str = "https://licensing.example/ren3/register";

fn fixture(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures")
        .join(name);
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .trim()
        .to_owned()
}

/// The texts codes carry: a request alone and with the portal, a receipt.
fn carried() -> Vec<(&'static str, String)> {
    let request = fixture("request.token");
    assert_eq!(request.len(), 531, "the fixture request changed size");
    vec![
        ("request", carried_text(&request, None)),
        (
            "request via the portal",
            carried_text(&request, Some(PORTAL)),
        ),
        ("receipt", carried_text(&fixture("receipt.token"), None)),
    ]
}

/// The light border a reader needs: `QUIET_ZONE` modules all round.
fn assert_quiet_zone(modules: usize, dark: impl Fn(usize, usize) -> bool, what: &str) {
    for a in 0..modules {
        for b in (0..QUIET_ZONE).chain(modules - QUIET_ZONE..modules) {
            assert!(
                !dark(a, b) && !dark(b, a),
                "{what}: dark module in the quiet zone"
            );
        }
    }
}

#[test]
fn every_drawing_decodes_to_exactly_the_carried_text() {
    for (n, (what, text)) in carried().into_iter().enumerate() {
        let what = format!("{n}: {what}");
        let code = Code::new(&text).unwrap();
        let outer = code.width() + 2 * QUIET_ZONE;

        // 1. The module matrix, with the quiet zone drawn around it.
        let matrix: Vec<Vec<bool>> = (0..outer)
            .map(|y| {
                (0..outer)
                    .map(|x| {
                        x >= QUIET_ZONE
                            && y >= QUIET_ZONE
                            && code.is_dark(x - QUIET_ZONE, y - QUIET_ZONE)
                    })
                    .collect()
            })
            .collect();
        assert_eq!(read_modules(&matrix), text, "{what}: matrix");

        // 2. The SVG, from its own rectangles.
        let grid = svg_modules(&code.svg("a license request"));
        let size = grid.len();
        assert_eq!(size, outer, "{what}: the SVG has the quiet zone");
        assert_quiet_zone(size, |x, y| grid[y][x], &what);
        assert_eq!(read_modules(&grid), text, "{what}: SVG");

        // 3. The terminal's text; the last line's lower half is below the
        // code.
        let drawn = code.terminal(None).unwrap();
        let rows = terminal_modules(&drawn);
        assert_eq!(rows.len(), outer + 1, "{what}: rows");
        assert!(
            rows[outer].iter().all(|dark| !dark),
            "{what}: last half row"
        );
        assert!(rows.iter().all(|row| row.len() == outer), "{what}: columns");
        assert_quiet_zone(outer, |x, y| rows[y][x], &what);
        assert_eq!(read_modules(&rows), text, "{what}: terminal");
        assert_eq!(
            drawn.lines().count(),
            outer.div_ceil(2),
            "{what}: two rows a line"
        );
    }
}

#[test]
fn a_request_fits_version_20_at_level_m() {
    for (what, text) in carried() {
        let code = Code::new(&text).unwrap();
        println!(
            "{what}: {} bytes, version {} at level {LEVEL_NAME}, {} modules, {} terminal columns",
            text.len(),
            code.version(),
            code.width(),
            code.terminal_columns()
        );
        assert_eq!(code.width(), 4 * code.version() as usize + 17, "{what}");
        assert_eq!(code.terminal_columns(), code.width() + 8, "{what}");
        if what.starts_with("request") {
            assert!(code.version() <= 20, "{what}: version {}", code.version());
        }
    }
    // The figures the crate's documentation gives.
    let request = Code::new(&fixture("request.token")).unwrap();
    assert_eq!((request.version(), request.terminal_columns()), (18, 97));
    let at_q =
        qrcode::QrCode::with_error_correction_level(fixture("request.token"), EcLevel::Q).unwrap();
    assert_eq!(at_q.version(), Version::Normal(22));
    assert_eq!(
        LEVEL_NAME,
        format!("{:?}", request.code.error_correction_level())
    );
}

#[test]
fn a_narrow_terminal_is_refused_with_the_columns_needed() {
    let code = Code::new(&fixture("request.token")).unwrap();
    let needed = code.terminal_columns();
    for (n, available) in [0, 40, 80, needed - 1].into_iter().enumerate() {
        let refused = code.terminal(Some(available));
        assert_eq!(
            refused,
            Err(TooNarrow { needed, available }),
            "{n}: {available} columns"
        );
        let said = refused.unwrap_err().to_string();
        assert!(said.contains(&format!("{needed} columns")), "{n}: {said}");
        assert!(said.contains("--qr-svg FILE"), "{n}: {said}");
        assert!(said.contains("license page"), "{n}: {said}");
    }
    for available in [needed, needed + 1, 500] {
        let drawn = code.terminal(Some(available)).unwrap();
        assert_eq!(drawn, code.terminal(None).unwrap());
    }
}

#[test]
fn a_text_too_long_for_any_version_is_refused_with_what_to_do() {
    assert!(Code::new(&"a".repeat(MAX_BYTES)).is_ok());
    let refused = Code::new(&"a".repeat(MAX_BYTES + 1)).err().unwrap();
    assert_eq!(
        refused,
        QrError::TooLong {
            bytes: MAX_BYTES + 1
        }
    );
    assert!(
        refused.to_string().contains("send it as a file"),
        "{refused}"
    );
}

#[test]
fn the_svg_is_a_standalone_accessible_element_with_its_title_escaped() {
    let code = Code::new("ren3-receipt-v2.x").unwrap();
    let svg = code.svg("<b>ACME & \"Sons\"</b>'\u{1}");
    let size = code.width() + 8;
    assert!(
        svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\" "),
        "no XML declaration, so it can go inline: {svg}"
    );
    assert!(svg.ends_with("</svg>"));
    for part in [
        format!("viewBox=\"0 0 {size} {size}\""),
        "role=\"img\"".to_owned(),
        "shape-rendering=\"crispEdges\"".to_owned(),
        "<title>&lt;b&gt;ACME &amp; &quot;Sons&quot;&lt;/b&gt;&apos;\u{fffd}</title>".to_owned(),
        format!("<rect width=\"{size}\" height=\"{size}\" fill=\"#fff\"/>"),
        "<path fill=\"#000\" d=\"M".to_owned(),
    ] {
        assert!(svg.contains(&part), "{part} in {svg}");
    }
    assert_eq!(svg.matches('<').count(), 6, "svg, title, rect, path: {svg}");
}

#[test]
fn the_portal_url_carries_the_request_as_its_query() {
    assert_eq!(
        carried_text("ren3-request-v2.a_b-c", None),
        "ren3-request-v2.a_b-c"
    );
    assert_eq!(carried_text("tok", Some("")), "tok");
    assert_eq!(
        carried_text("ren3-request-v2.a_b-c", Some(PORTAL)),
        format!("{PORTAL}?request=ren3-request-v2.a_b-c")
    );
    // Not a token's characters, but the URL stays one URL.
    assert_eq!(
        carried_text("a b&c=d#é", Some(PORTAL)),
        format!("{PORTAL}?request=a%20b%26c%3Dd%23%C3%A9")
    );
}
