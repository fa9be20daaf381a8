//! `EndpointConfig` (with liag-core's `Config` inside) read from and written to TOML through
//! the `serde` feature: partial files keep the defaults, durations read as "100ms", unknown
//! keys are refused.

use std::time::Duration;

use liag_tokio::EndpointConfig;

#[test]
fn a_partial_file_keeps_the_defaults() {
    let text = r#"
        max_connections = 100
        handshake_timeout = "3s"

        [config]
        ping_interval = "5s"
        ack_timeout_min = "250ms"
        no_link_timeout_before_data = "2s"
    "#;
    let read: EndpointConfig = toml::from_str(text).expect("a valid file");
    let default = EndpointConfig::default();
    assert_eq!(read.max_connections, 100);
    assert_eq!(read.handshake_timeout, Duration::from_secs(3));
    assert_eq!(read.config.ping_interval, Duration::from_secs(5));
    assert_eq!(read.config.ack_timeout_min, Duration::from_millis(250));
    assert_eq!(
        read.config.no_link_timeout_before_data,
        Some(Duration::from_secs(2))
    );
    assert_eq!(read.max_links_per_source, default.max_links_per_source);
    assert_eq!(read.config.recv_buffer, default.config.recv_buffer);
    assert_eq!(read.config.ping_timeout, default.config.ping_timeout);
}

#[test]
fn unknown_keys_and_bad_values_are_refused() {
    let e = toml::from_str::<EndpointConfig>("max_conections = 1").unwrap_err();
    assert!(
        e.to_string().contains("unknown field `max_conections`"),
        "{e}"
    );
    let e = toml::from_str::<EndpointConfig>("[config]\nping_interval = 5").unwrap_err();
    assert!(e.to_string().contains("ping_interval"), "{e}");
    let e = toml::from_str::<EndpointConfig>("[config]\nrecv_buffer = 0").unwrap_err();
    assert!(e.to_string().contains("recv_buffer"), "{e}");
}

#[test]
fn the_defaults_write_and_read_back() {
    let default = EndpointConfig::default();
    let text = toml::to_string(&default).expect("serializable");
    assert!(text.contains("handshake_timeout = \"10s\""), "{text}");
    let read: EndpointConfig = toml::from_str(&text).expect("reads back");
    assert_eq!(toml::to_string(&read).expect("serializable"), text);
}
