//! A cable between the gateway and PostgreSQL that a test can pull: a Unix-socket proxy in
//! front of the test server. `cut` drops every open connection and refuses new ones.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use sqlx::postgres::PgConnectOptions;
use tokio::net::{TcpStream, UnixListener, UnixStream};
use tokio::task::JoinSet;

pub struct DbProxy {
    dir: tempfile::TempDir,
    target: PgConnectOptions,
    tasks: Arc<Mutex<JoinSet<()>>>,
}

impl DbProxy {
    pub fn start(target: PgConnectOptions) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let p = Self {
            dir,
            target,
            tasks: Arc::default(),
        };
        p.restore();
        p
    }

    /// Options that reach the database through the proxy.
    pub fn options(&self) -> PgConnectOptions {
        self.target.clone().socket(self.dir.path()).port(5432)
    }

    fn socket_path(&self) -> PathBuf {
        self.dir.path().join(".s.PGSQL.5432")
    }

    /// The database becomes unreachable: connections reset, new ones refused.
    pub fn cut(&self) {
        self.tasks.lock().unwrap().abort_all();
        let _ = std::fs::remove_file(self.socket_path());
    }

    /// Connected again.
    pub fn restore(&self) {
        let listener = UnixListener::bind(self.socket_path()).unwrap();
        let target = self.target.clone();
        let tasks = self.tasks.clone();
        let accept = async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let target = target.clone();
                tasks.lock().unwrap().spawn(async move {
                    let _ = match target.get_socket() {
                        Some(dir) => {
                            let path = dir.join(format!(".s.PGSQL.{}", target.get_port()));
                            let mut server = UnixStream::connect(path).await.unwrap();
                            tokio::io::copy_bidirectional(&mut client, &mut server).await
                        }
                        None => {
                            let addr = (target.get_host().to_owned(), target.get_port());
                            let mut server = TcpStream::connect(addr).await.unwrap();
                            tokio::io::copy_bidirectional(&mut client, &mut server).await
                        }
                    };
                });
            }
        };
        // The accept loop itself is one of the tasks, so `cut` stops it too.
        self.tasks.lock().unwrap().spawn(accept);
    }
}
