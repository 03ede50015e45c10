//! The catalogue's wire protocol: one line out, one line back, on a fresh
//! turmoil TCP connection (our scenarios test patterns, not protocols; a
//! user's scenario speaks its own, e.g. HTTP: see `crates/example-orders`).

/// Waits for every task of a host's workload; a task's panic fails the
/// host (and so the run).
pub async fn join_all(tasks: Vec<tokio::task::JoinHandle<()>>) {
    for task in tasks {
        task.await.expect("a workload task panicked");
    }
}

/// The scenarios' wire protocol: one line out, one line back, on a fresh
/// turmoil TCP connection to `host:port`. An empty answer (the peer closed)
/// is an error.
pub async fn exchange(host: &str, port: u16, request: String) -> Result<String, String> {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let stream = turmoil::net::TcpStream::connect((host, port))
        .await
        .map_err(|e| e.to_string())?;
    let (read, mut write) = stream.into_split();
    write
        .write_all(format!("{request}\n").as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut line = String::new();
    BufReader::new(read)
        .read_line(&mut line)
        .await
        .map_err(|e| e.to_string())?;
    if line.is_empty() {
        return Err("connection closed".into());
    }
    Ok(line.trim_end().to_string())
}

/// The server side of [`exchange`]: accepts on `port` forever, and answers
/// each connection's one request line (newline included) with the line
/// `handle` returns, each connection in its own task.
pub async fn serve<F, Fut>(port: u16, handle: F) -> turmoil::Result
where
    F: Fn(String) -> Fut + 'static,
    Fut: std::future::Future<Output = String> + 'static,
{
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let handle = std::rc::Rc::new(handle);
    let listener = turmoil::net::TcpListener::bind(("0.0.0.0", port)).await?;
    loop {
        let (stream, _) = listener.accept().await?;
        let handle = handle.clone();
        tokio::task::spawn_local(async move {
            let (read, mut write) = stream.into_split();
            let mut line = String::new();
            if BufReader::new(read).read_line(&mut line).await.is_err() {
                return;
            }
            let reply = handle(line).await;
            let _ = write.write_all(format!("{reply}\n").as_bytes()).await;
        });
    }
}
