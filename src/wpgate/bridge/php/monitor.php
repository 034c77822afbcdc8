<?php
// Where the site's PHP errors go: `log_facts`.

/*
 * Monitoring. Where this site's PHP errors are written, worked out as wp_debug_mode() does for the
 * web server: WP_DEBUG_LOG (true: wp-content/debug.log; a path: that file), else PHP's error_log.
 */
function wpgate_action_log_facts( array $params ) {
	$debug     = defined( 'WP_DEBUG' ) && WP_DEBUG;
	$debug_log = defined( 'WP_DEBUG_LOG' ) ? WP_DEBUG_LOG : false;
	$path      = null;
	$source    = null;
	if ( $debug && in_array( strtolower( (string) $debug_log ), array( 'true', '1' ), true ) ) {
		$path   = WP_CONTENT_DIR . '/debug.log';
		$source = 'WP_DEBUG_LOG';
	} elseif ( $debug && is_string( $debug_log ) && '' !== $debug_log ) {
		$path   = $debug_log;
		$source = 'WP_DEBUG_LOG';
	} elseif ( ini_get( 'log_errors' ) && '' !== (string) ini_get( 'error_log' ) && 'syslog' !== ini_get( 'error_log' ) ) {
		$path   = (string) ini_get( 'error_log' );
		$source = 'error_log';
	}
	if ( null !== $path && '/' !== substr( $path, 0, 1 ) ) {
		$path = ABSPATH . $path; // relative to where the web server runs WordPress from
	}
	return array(
		'path'          => $path,
		'source'        => $source,
		'wp_debug'      => $debug,
		'wp_debug_log'  => is_scalar( $debug_log ) ? $debug_log : null,
		'ini_error_log' => (string) ini_get( 'error_log' ),
	);
}
