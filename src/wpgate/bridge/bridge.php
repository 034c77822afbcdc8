<?php
/**
 * wpgate's bridge into WordPress: loads the site as WP-CLI does and answers one request with one JSON document.
 *
 * wpgate sends this file to the site's own PHP CLI on standard input, preceded by a line that sets
 * $wpgate_request (action, params, nonce, url, admin); nothing is written to the server. Whatever
 * WordPress or a plugin prints is captured and kept out of the answer, which is framed by a nonce
 * so that no stray output can pass for it. Failures (a PHP fatal, wp_die(), an early exit) come
 * back as a structured error with the file and line where PHP knows them.
 */

if ( ! isset( $wpgate_request ) || ! is_array( $wpgate_request ) ) {
	fwrite( fopen( 'php://stderr', 'w' ), "wpgate bridge: no request\n" );
	exit( 2 );
}

$GLOBALS['wpgate_answered'] = false;
$GLOBALS['wpgate_died']     = null;

function wpgate_answer( array $document ) {
	global $wpgate_request;
	if ( $GLOBALS['wpgate_answered'] ) {
		return;
	}
	$GLOBALS['wpgate_answered'] = true;
	$captured = '';
	while ( ob_get_level() > 0 ) {
		$captured = ob_get_clean() . $captured;
	}
	if ( '' !== $captured ) {
		$document['output'] = substr( $captured, 0, 4000 );
	}
	$json = json_encode( $document, JSON_UNESCAPED_SLASHES | JSON_INVALID_UTF8_SUBSTITUTE | JSON_PARTIAL_OUTPUT_ON_ERROR );
	$out  = fopen( 'php://stdout', 'w' );
	$mark = $wpgate_request['nonce'];
	fwrite( $out, "\n<<<wpgate:$mark>>>" . $json . "<<<end:$mark>>>\n" );
	fflush( $out );
}

function wpgate_fail( $kind, $message, array $extra = array() ) {
	wpgate_answer( array( 'ok' => false, 'error' => array_merge( array( 'kind' => $kind, 'message' => $message ), $extra ) ) );
	exit( 0 );
}

function wpgate_plain( $message ) {
	if ( is_object( $message ) && method_exists( $message, 'get_error_message' ) ) {
		$message = $message->get_error_message();
	}
	if ( ! is_scalar( $message ) ) {
		$message = json_encode( $message );
	}
	$text = html_entity_decode( strip_tags( (string) $message ), ENT_QUOTES, 'UTF-8' );
	return trim( preg_replace( '/\s+/', ' ', $text ) );
}

register_shutdown_function(
	function () {
		if ( $GLOBALS['wpgate_answered'] ) {
			// WordPress's own shutdown work still runs (an upgrader deletes its temporary backup there).
			return;
		}
		$error = error_get_last();
		$fatal = E_ERROR | E_PARSE | E_CORE_ERROR | E_COMPILE_ERROR | E_USER_ERROR | E_RECOVERABLE_ERROR;
		if ( $error && ( $error['type'] & $fatal ) ) {
			$message = preg_replace( '/\s+thrown$/', '', strtok( $error['message'], "\n" ) );
			wpgate_answer( array( 'ok' => false, 'error' => array(
				'kind'    => 'fatal',
				'message' => $message,
				'file'    => $error['file'],
				'line'    => $error['line'],
			) ) );
		} elseif ( null !== $GLOBALS['wpgate_died'] ) {
			wpgate_answer( array( 'ok' => false, 'error' => $GLOBALS['wpgate_died'] ) );
		} else {
			wpgate_answer( array( 'ok' => false, 'error' => array(
				'kind'    => 'exit',
				'message' => 'WordPress stopped before it could answer (exit or die called while loading)',
			) ) );
		}
		// After a failure nothing more of the site's code runs.
		exit( 0 );
	}
);

ob_start();

$wpgate_root = rtrim( $wpgate_request['path'], '/' );
if ( ! is_dir( $wpgate_root ) ) {
	wpgate_fail( 'not_wordpress', "no folder at $wpgate_root" );
}
if ( ! is_file( "$wpgate_root/wp-load.php" ) || ! is_file( "$wpgate_root/wp-includes/version.php" ) ) {
	wpgate_fail( 'not_wordpress', "no WordPress at $wpgate_root (wp-load.php or wp-includes/version.php is missing)" );
}
$wpgate_parent = dirname( $wpgate_root );
if ( ! is_file( "$wpgate_root/wp-config.php" )
	&& ! ( is_file( "$wpgate_parent/wp-config.php" ) && ! is_file( "$wpgate_parent/wp-settings.php" ) ) ) {
	wpgate_fail( 'no_config', "WordPress at $wpgate_root has no wp-config.php" );
}

// The request a browser would make for this site, as WP-CLI fakes it.
$wpgate_url = parse_url( $wpgate_request['url'] );
$wpgate_https = isset( $wpgate_url['scheme'] ) && 'https' === $wpgate_url['scheme'];
$wpgate_host = $wpgate_url['host'] . ( isset( $wpgate_url['port'] ) ? ':' . $wpgate_url['port'] : '' );
$wpgate_base = isset( $wpgate_url['path'] ) ? rtrim( $wpgate_url['path'], '/' ) : '';
$_SERVER['HTTP_HOST']       = $wpgate_host;
$_SERVER['SERVER_NAME']     = $wpgate_url['host'];
$_SERVER['SERVER_PORT']     = isset( $wpgate_url['port'] ) ? (string) $wpgate_url['port'] : ( $wpgate_https ? '443' : '80' );
$_SERVER['REQUEST_URI']     = $wpgate_base . ( empty( $wpgate_request['admin'] ) ? '/' : '/wp-admin/' );
$_SERVER['SCRIPT_NAME']     = $wpgate_base . ( empty( $wpgate_request['admin'] ) ? '/index.php' : '/wp-admin/index.php' );
$_SERVER['PHP_SELF']        = $_SERVER['SCRIPT_NAME'];
$_SERVER['REQUEST_METHOD']  = 'GET';
$_SERVER['SERVER_PROTOCOL'] = 'HTTP/1.1';
$_SERVER['REMOTE_ADDR']     = '127.0.0.1';
$_SERVER['HTTP_USER_AGENT'] = 'wpgate';
if ( $wpgate_https ) {
	$_SERVER['HTTPS'] = 'on';
}

if ( ! empty( $wpgate_request['admin'] ) ) {
	define( 'WP_ADMIN', true );
}

// Hooks set before WordPress loads, in the form wp-includes/plugin.php turns into WP_Hook objects.
function wpgate_early_hook( $name, $callback, $priority = 10, $accepted_args = 1 ) {
	$GLOBALS['wp_filter'][ $name ][ $priority ][] = array( 'function' => $callback, 'accepted_args' => $accepted_args );
}

// A site in maintenance mode is exactly the one wpgate may have to read and repair.
wpgate_early_hook( 'enable_maintenance_mode', function () { return false; } );
// WordPress's own handler would pause the plugin and mail the admin: report the fatal instead.
wpgate_early_hook( 'wp_fatal_error_handler_enabled', function () { return false; } );
wpgate_early_hook( 'filesystem_method', function () { return 'direct'; } );
wpgate_early_hook(
	'wp_die_handler',
	function () {
		return function ( $message, $title = '', $args = array() ) {
			$GLOBALS['wpgate_died'] = array(
				'kind'    => 'wp_die',
				'message' => wpgate_plain( $message ) ?: wpgate_plain( $title ) ?: 'WordPress stopped with wp_die()',
			);
			exit( 0 );
		};
	}
);
// Nothing here reaches wordpress.org: update checks and API calls fail at once instead of timing out.
wpgate_early_hook(
	'pre_http_request',
	function ( $pre, $args = array(), $url = '' ) {
		$host = (string) parse_url( $url, PHP_URL_HOST );
		if ( preg_match( '/(^|\.)(wordpress\.org|w\.org)$/i', $host ) ) {
			return new WP_Error( 'wpgate_blocked', "wpgate blocks requests to $host" );
		}
		return $pre;
	},
	10,
	3
);
// A deploy tool must not spawn the site's cron.
wpgate_early_hook(
	'init',
	function () {
		remove_action( 'init', 'wp_cron' );
		remove_action( 'wp_loaded', '_wp_cron', 20 );
	},
	0
);

// Reading a site must work when a plugin or theme on it is broken, so reads load neither
// (as `wp --skip-plugins --skip-themes` does); the options stay true once loading is over.
if ( ! empty( $wpgate_request['skip_plugins'] ) ) {
	$wpgate_no_plugins = function () { return array(); };
	wpgate_early_hook( 'option_active_plugins', $wpgate_no_plugins, 999 );
	wpgate_early_hook( 'site_option_active_sitewide_plugins', $wpgate_no_plugins, 999 );
	wpgate_early_hook(
		'plugins_loaded',
		function () use ( $wpgate_no_plugins ) {
			remove_filter( 'option_active_plugins', $wpgate_no_plugins, 999 );
			remove_filter( 'site_option_active_sitewide_plugins', $wpgate_no_plugins, 999 );
		},
		-99999
	);
}
if ( ! empty( $wpgate_request['skip_themes'] ) ) {
	$wpgate_no_theme = function () { return ABSPATH . 'wpgate-no-theme'; };
	wpgate_early_hook( 'template_directory', $wpgate_no_theme, 999 );
	wpgate_early_hook( 'stylesheet_directory', $wpgate_no_theme, 999 );
	wpgate_early_hook(
		'after_setup_theme',
		function () use ( $wpgate_no_theme ) {
			remove_filter( 'template_directory', $wpgate_no_theme, 999 );
			remove_filter( 'stylesheet_directory', $wpgate_no_theme, 999 );
		},
		-99999
	);
}

chdir( $wpgate_root );
require "$wpgate_root/wp-load.php";

if ( is_admin() ) {
	require_once ABSPATH . 'wp-admin/includes/admin.php';
}

function wpgate_action_ping( array $params ) {
	global $wp_version;
	return array( 'wordpress' => $wp_version, 'php' => PHP_VERSION, 'abspath' => ABSPATH );
}

function wpgate_action_inventory( array $params ) {
	global $wp_version, $wp_db_version;
	require_once ABSPATH . 'wp-admin/includes/plugin.php';
	require_once ABSPATH . 'wp-admin/includes/theme.php';

	// Versions come from disk, never from a cache a previous request left behind.
	clearstatcache();
	wp_cache_delete( 'plugins', 'plugins' );
	wp_clean_themes_cache( false );

	$plugins = array();
	foreach ( get_plugins() as $file => $data ) {
		$folder    = dirname( $file );
		$plugins[] = array(
			'slug'           => '.' === $folder ? basename( $file, '.php' ) : $folder,
			'file'           => $file,
			'name'           => $data['Name'],
			'version'        => $data['Version'],
			'active'         => is_plugin_active( $file ),
			'network_active' => is_multisite() && is_plugin_active_for_network( $file ),
		);
	}

	$themes     = array();
	$stylesheet = get_stylesheet();
	foreach ( wp_get_themes() as $slug => $theme ) {
		$template = $theme->get_template();
		$themes[] = array(
			'slug'    => (string) $slug,
			'name'    => $theme->get( 'Name' ),
			'version' => $theme->get( 'Version' ),
			'active'  => $slug === $stylesheet,
			'parent'  => $template !== $slug ? $template : null,
		);
	}

	$mu_plugins = array();
	foreach ( get_mu_plugins() as $file => $data ) {
		$mu_plugins[] = array( 'file' => $file, 'name' => $data['Name'], 'version' => $data['Version'] );
	}
	$dropins = array();
	foreach ( get_dropins() as $file => $data ) {
		$dropins[] = array( 'file' => $file, 'name' => $data['Name'], 'version' => $data['Version'] );
	}

	return array(
		'core'        => array(
			'version'          => $wp_version,
			'db_version'       => (int) get_option( 'db_version' ),
			'files_db_version' => (int) $wp_db_version,
		),
		'plugins'     => $plugins,
		'themes'      => $themes,
		'mu_plugins'  => $mu_plugins,
		'dropins'     => $dropins,
		'php_version' => PHP_VERSION,
		'multisite'   => is_multisite(),
		'maintenance' => file_exists( ABSPATH . '.maintenance' ),
		'home'        => home_url(),
	);
}

$wpgate_action = 'wpgate_action_' . preg_replace( '/[^a-z_]/', '', (string) $wpgate_request['action'] );
if ( ! function_exists( $wpgate_action ) ) {
	wpgate_fail( 'bad_request', 'the bridge has no action ' . $wpgate_request['action'] );
}
try {
	$wpgate_result = call_user_func( $wpgate_action, isset( $wpgate_request['params'] ) ? (array) $wpgate_request['params'] : array() );
} catch ( Throwable $wpgate_error ) {
	wpgate_fail( 'exception', get_class( $wpgate_error ) . ': ' . $wpgate_error->getMessage(), array(
		'file' => $wpgate_error->getFile(),
		'line' => $wpgate_error->getLine(),
	) );
}
wpgate_answer( array( 'ok' => true, 'result' => $wpgate_result ) );
exit( 0 );
