//! A pre-load sanity check of a plugin library's ELF headers.
//!
//! `dlopen` of a file that is not a shared object fails with terse text
//! ("file too short"), and of a truncated one can kill the worker with
//! SIGBUS when a mapped segment lies past the end of the file. Both are
//! contained either way; this check only turns them into a reason an
//! operator can act on, before a worker is started. It reads headers only.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

const PT_LOAD: u32 = 1;
const ET_DYN: u16 = 3;

/// Checks that `file` (`len` bytes) looks like a complete 64-bit
/// little-endian ELF shared object for this machine.
pub fn check_shared_object(file: &File, len: u64) -> Result<(), String> {
    let mut header = [0u8; 64];
    let read = read_at_most(file, &mut header, 0).map_err(|e| e.to_string())?;
    if read < 4 || header[..4] != *b"\x7fELF" {
        let start: String = header[..read.min(16)]
            .iter()
            .map(|&b| if b.is_ascii_graphic() || b == b' ' { b as char } else { '.' })
            .collect();
        return Err(format!("not an ELF file (it starts with `{start}`)"));
    }
    if read < 64 {
        return Err(format!("truncated: {len} bytes is shorter than an ELF header"));
    }
    if header[4] != 2 || header[5] != 1 {
        return Err("not a 64-bit little-endian ELF file".to_owned());
    }
    let e_type = u16::from_le_bytes([header[16], header[17]]);
    if e_type != ET_DYN {
        return Err(format!("not a shared object (ELF type {e_type})"));
    }
    let e_machine = u16::from_le_bytes([header[18], header[19]]);
    if e_machine != host_machine() {
        return Err(format!("built for another machine (ELF machine {e_machine})"));
    }
    let phoff = u64::from_le_bytes(header[32..40].try_into().map_err(|_| "bad header")?);
    let phentsize = u64::from(u16::from_le_bytes([header[54], header[55]]));
    let phnum = u64::from(u16::from_le_bytes([header[56], header[57]]));
    let table_end = phoff.saturating_add(phentsize.saturating_mul(phnum));
    if phentsize < 56 || table_end > len {
        return Err(format!("truncated: the program headers end at byte {table_end} of {len}"));
    }
    let mut entry = [0u8; 56];
    for index in 0..phnum {
        let at = phoff + index * phentsize;
        if read_at_most(file, &mut entry, at).map_err(|e| e.to_string())? < entry.len() {
            return Err(format!("truncated: program header {index} is cut off"));
        }
        let p_type = u32::from_le_bytes([entry[0], entry[1], entry[2], entry[3]]);
        let p_offset = u64::from_le_bytes(entry[8..16].try_into().map_err(|_| "bad header")?);
        let p_filesz = u64::from_le_bytes(entry[32..40].try_into().map_err(|_| "bad header")?);
        let end = p_offset.saturating_add(p_filesz);
        if p_type == PT_LOAD && end > len {
            return Err(format!(
                "truncated: a loadable segment ends at byte {end} but the file has {len}"
            ));
        }
    }
    Ok(())
}

fn host_machine() -> u16 {
    match std::env::consts::ARCH {
        "x86_64" => 62,
        "aarch64" => 183,
        "riscv64" => 243,
        _ => 0,
    }
}

fn read_at_most(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read_at(&mut buf[filled..], offset + filled as u64) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => return Err(err),
        }
    }
    Ok(filled)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write as _;

    fn file_with(bytes: &[u8]) -> File {
        let mut file = tempfile::tempfile().expect("tempfile");
        file.write_all(bytes).expect("write");
        file
    }

    #[test]
    fn a_header_without_its_program_headers_is_truncated() {
        // The test binary is a 64-bit ELF for this machine; keep only its
        // header and mark it a shared object.
        let exe = std::fs::read("/proc/self/exe").expect("exe");
        let mut header = exe[..64].to_vec();
        header[16..18].copy_from_slice(&ET_DYN.to_le_bytes());
        let err = check_shared_object(&file_with(&header), 64).expect_err("truncated");
        assert!(err.starts_with("truncated: the program headers end at byte"), "{err}");
    }

    #[test]
    fn a_script_is_named_for_what_it_is() {
        let script = b"#!/bin/sh\necho hi\n";
        assert_eq!(
            check_shared_object(&file_with(script), script.len() as u64),
            Err("not an ELF file (it starts with `#!/bin/sh.echo h`)".to_owned())
        );
    }
}
