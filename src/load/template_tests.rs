use super::{unescape, Rng, Template};
use proptest::prelude::*;

fn render(src: &str, seq: u64, conn: u64, seed: u64) -> Vec<u8> {
    let t = Template::parse(src).unwrap();
    let mut out = Vec::new();
    t.render(seq, conn, &mut Rng::for_conn(seed, conn), &mut out);
    out
}

#[test]
fn escapes_and_fixed_placeholders() {
    assert_eq!(render("PING\\r\\n", 0, 0, 1), b"PING\r\n");
    assert_eq!(
        render("a\\tb\\\\c\\0\\x41\\xff", 0, 0, 1),
        b"a\tb\\c\0A\xff"
    );
    assert_eq!(render("{seq}/{conn}", 42, 7, 1), b"42/7");
    assert_eq!(render("{{x}} {pad:3}", 0, 0, 1), b"{x} xxx");
    assert_eq!(render("é{seq}", 0, 0, 1), "é0".as_bytes());
    assert_eq!(render("", 0, 0, 1), b"");
}

#[test]
fn random_parts_follow_the_seed() {
    let a = render("{key:1000} {rand:12}", 0, 3, 99);
    assert_eq!(a, render("{key:1000} {rand:12}", 0, 3, 99));
    assert_ne!(a, render("{key:1000} {rand:12}", 0, 3, 100));
    assert_ne!(a, render("{key:1000} {rand:12}", 0, 4, 99));
    let s = String::from_utf8(a).unwrap();
    let (k, r) = s.split_once(' ').unwrap();
    assert!(k.len() == 3 && k.parse::<u64>().unwrap() < 1000, "{k}");
    // Keys are zero-padded to the width of N-1: a request's length is fixed.
    let mut rng = Rng::for_conn(1, 0);
    let t = Template::parse("k{key:100}").unwrap();
    let mut lens = std::collections::BTreeSet::new();
    let mut small = false;
    for _ in 0..1000 {
        let mut out = Vec::new();
        t.render(0, 0, &mut rng, &mut out);
        lens.insert(out.len());
        small |= out[1] == b'0';
    }
    assert_eq!(lens.into_iter().collect::<Vec<_>>(), vec![3]);
    assert!(small);
    assert_eq!(render("{key:1}", 0, 0, 1), b"0");
    assert!(r.len() == 12 && r.bytes().all(|b| b.is_ascii_lowercase()));
    assert!(Template::parse("{key:2}").unwrap().is_random());
    assert!(!Template::parse("{seq}{pad:2}").unwrap().is_random());
}

#[test]
fn keys_cover_the_range_uniformly() {
    let mut rng = Rng::for_conn(5, 0);
    let mut seen = [0u32; 10];
    for _ in 0..100_000 {
        seen[rng.below(10) as usize] += 1;
    }
    // 10,000 expected each; 5 sigma is about 475.
    assert!(
        seen.iter().all(|&n| (9_500..10_500).contains(&n)),
        "{seen:?}"
    );
    assert_eq!(rng.below(1), 0);
    let _ = rng.below(u64::MAX);
}

#[test]
fn bad_templates_name_the_column() {
    let e = |s: &str| Template::parse(s).unwrap_err();
    assert_eq!(e("ab\\q").column, 4);
    assert_eq!(e("\\x4").column, 4);
    assert_eq!(e("\\xg1").column, 3);
    assert_eq!(e("x\\").column, 3);
    assert_eq!(e("SET {key}").column, 9);
    assert_eq!(e("SET {key:0}").column, 10);
    assert_eq!(e("SET {key:-1}").column, 10);
    assert_eq!(e("SET {key:+1}").column, 10);
    assert_eq!(e("{bogus}").column, 2);
    assert_eq!(e("{seq:3}").column, 5);
    assert_eq!(e("ab{seq").column, 7);
    assert_eq!(e("a}b").column, 2);
    assert_eq!(e("{pad:99999999999}").column, 6);
    assert!(e("{rand:x}").to_string().contains("a number from 1 to"));
    assert!(e("{nope}")
        .to_string()
        .starts_with("at column 2: expected a placeholder"));
}

#[test]
fn unescape_decodes_and_keeps_braces() {
    assert_eq!(unescape("END\\r\\n{}").unwrap(), b"END\r\n{}");
    assert_eq!(unescape("\\x").unwrap_err().column, 3);
}

/// An independent renderer of a generated template (the oracle).
#[derive(Clone, Debug)]
enum Piece {
    Text(String),
    Esc(u8),
    Seq,
    Conn,
    Pad(u8),
    Brace(bool),
}

fn piece() -> impl Strategy<Value = Piece> {
    prop_oneof![
        "[a-zA-Z0-9 :*$é]{0,6}".prop_map(Piece::Text),
        any::<u8>().prop_map(Piece::Esc),
        Just(Piece::Seq),
        Just(Piece::Conn),
        (1u8..20).prop_map(Piece::Pad),
        any::<bool>().prop_map(Piece::Brace),
    ]
}

proptest! {
    #[test]
    fn generated_templates_render_as_written(pieces in prop::collection::vec(piece(), 0..12),
                                             seq in any::<u64>(), conn in any::<u64>()) {
        let mut src = String::new();
        let mut want = Vec::new();
        for p in &pieces {
            match p {
                Piece::Text(t) => { src.push_str(t); want.extend_from_slice(t.as_bytes()); }
                Piece::Esc(b) => { src.push_str(&format!("\\x{b:02x}")); want.push(*b); }
                Piece::Seq => { src.push_str("{seq}"); want.extend_from_slice(seq.to_string().as_bytes()); }
                Piece::Conn => { src.push_str("{conn}"); want.extend_from_slice(conn.to_string().as_bytes()); }
                Piece::Pad(n) => { src.push_str(&format!("{{pad:{n}}}")); want.extend(std::iter::repeat(b'x').take(*n as usize)); }
                Piece::Brace(open) => { src.push_str(if *open { "{{" } else { "}}" }); want.push(if *open { b'{' } else { b'}' }); }
            }
        }
        prop_assert_eq!(render(&src, seq, conn, 0), want);
    }

    #[test]
    fn any_text_parses_or_errs_within_it(s in "\\PC{0,40}") {
        if let Err(e) = Template::parse(&s) {
            prop_assert!(e.column >= 1 && e.column <= s.len() + 1, "{e} for {s:?}");
        }
    }
}

/// Lemire's method as written first (the threshold computed every call):
/// the fast path must give the very same numbers, or `--seed` would mean
/// another run than before.
fn below_reference(rng: &mut Rng, n: u64) -> u64 {
    let threshold = n.wrapping_neg() % n;
    loop {
        let m = u128::from(rng.next_u64()) * u128::from(n);
        if (m as u64) >= threshold {
            return (m >> 64) as u64;
        }
    }
}

proptest! {
    #[test]
    fn below_is_lemire_to_the_number(seed: u64, pick in 0usize..8, any_n in 1u64..) {
        // Ranges where rejection is common (just over a power of two) and
        // rare, and the smallest.
        let n = [1, 2, 3, 10, 26, (1 << 63) + 1, u64::MAX, any_n][pick];
        let (mut a, mut b) = (Rng::for_conn(seed, 0), Rng::for_conn(seed, 0));
        for _ in 0..64 {
            prop_assert_eq!(a.below(n), below_reference(&mut b, n));
        }
    }

    #[test]
    fn keys_render_as_the_zero_padded_number_drawn(seed: u64, n in 1u64.., conn in 0u64..4) {
        let t = Template::parse(&format!("<{{key:{n}}}>")).unwrap();
        let (mut a, mut b) = (Rng::for_conn(seed, conn), Rng::for_conn(seed, conn));
        let width = (n - 1).to_string().len();
        for _ in 0..8 {
            let mut out = vec![b'!'];
            t.render(0, conn, &mut a, &mut out);
            let want = format!("!<{:0width$}>", below_reference(&mut b, n));
            prop_assert_eq!(String::from_utf8(out).unwrap(), want);
        }
    }
}
