//! The peer's side of an in-memory connection.

use std::io::{self, Read, Write};

/// Reads come from a fixed input (what the fuzzer chose the peer sends),
/// writes are collected for the target to check.
pub struct Pipe<'a> {
    pub input: &'a [u8],
    pub output: Vec<u8>,
}

impl<'a> Pipe<'a> {
    pub fn new(input: &'a [u8]) -> Self {
        Pipe {
            input,
            output: Vec::new(),
        }
    }
}

impl Read for Pipe<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.input.read(buf)
    }
}

impl Write for Pipe<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.output.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
