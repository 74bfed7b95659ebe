//! QR codes read back by an independent decoder (`rqrr`): from pixels, a
//! grid of modules, an SVG drawing of `ren3-qr`, or its terminal text. The
//! QR crate's own tests and the end-to-end tests read codes the same way.

/// Pixels per module in the pictures given to the decoder.
const SCALE: usize = 4;

/// The colours every line of a terminal drawing starts with, and the reset
/// it ends with (`ren3-qr`'s terminal module).
const LINE_START: &str = "\x1b[97;40m";
const LINE_END: &str = "\x1b[0m";

/// What rqrr reads in a `width` × `height` greyscale picture: exactly one
/// code, or the test fails.
pub fn read(width: usize, height: usize, grey: impl Fn(usize, usize) -> u8) -> String {
    let mut picture = rqrr::PreparedImage::prepare_from_greyscale(width, height, grey);
    let grids = picture.detect_grids();
    assert_eq!(grids.len(), 1, "one code in the picture");
    grids[0].decode().expect("rqrr decodes the code").1
}

/// What rqrr reads in a picture of `modules` (rows of dark or light, quiet
/// zone included), drawn at four pixels a module.
pub fn read_modules(modules: &[Vec<bool>]) -> String {
    let (height, width) = (modules.len(), modules[0].len());
    read(width * SCALE, height * SCALE, |x, y| {
        if modules[y / SCALE][x / SCALE] {
            0
        } else {
            255
        }
    })
}

/// The modules an SVG of `ren3-qr` draws: its viewBox, and the rectangles
/// of its one path (`M x y h run v1 h-run z`), each checked to be one
/// module high, read back as a grid.
pub fn svg_modules(svg: &str) -> Vec<Vec<bool>> {
    let size: usize = svg
        .split("viewBox=\"0 0 ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .expect("a viewBox")
        .parse()
        .unwrap();
    let path = svg
        .split(" d=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("one path");
    let mut grid = vec![vec![false; size]; size];
    for rect in path.split('z').filter(|r| !r.is_empty()) {
        let numbers: Vec<usize> = rect
            .trim_start_matches('M')
            .split(['h', 'v', ' '])
            .filter(|n| !n.is_empty() && !n.starts_with('-'))
            .map(|n| n.parse().unwrap())
            .collect();
        let [x, y, run, height] = numbers[..] else {
            panic!("not a run: {rect}")
        };
        assert_eq!(height, 1, "{rect}");
        assert!(rect.ends_with(&format!("h-{run}")), "{rect}");
        for cell in &mut grid[y][x..x + run] {
            *cell = true;
        }
    }
    grid
}

/// The modules a terminal drawing shows, from the lines of `text` that
/// start with its colours (each must end with the reset): each character
/// two modules one above the other, the ink being the light ones, as a
/// terminal shows it with those colours. At least one line must be there.
pub fn terminal_modules(text: &str) -> Vec<Vec<bool>> {
    let mut rows = Vec::new();
    for line in text.lines().filter(|line| line.starts_with(LINE_START)) {
        let cells = line[LINE_START.len()..]
            .strip_suffix(LINE_END)
            .unwrap_or_else(|| panic!("a line without its reset: {line:?}"));
        let (upper, lower): (Vec<bool>, Vec<bool>) = cells
            .chars()
            .map(|c| match c {
                '█' => (false, false),
                '▀' => (false, true),
                '▄' => (true, false),
                ' ' => (true, true),
                c => panic!("{c:?} in a QR code"),
            })
            .unzip();
        rows.push(upper);
        rows.push(lower);
    }
    assert!(!rows.is_empty(), "no QR code in {text}");
    rows
}
