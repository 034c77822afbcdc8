<?php
/**
 * wpgate's bridge into WordPress: loads the site as WP-CLI does and answers one request with one JSON document.
 *
 * The bridge is one PHP program kept in files by concern: this one (boot: the answer, failures, loading
 * WordPress), then the actions' files, then actions.php (the index of actions and the dispatch), joined
 * in the order `wpgate.bridge.PARTS` gives. wpgate sends the program to the site's own PHP CLI on
 * standard input, preceded by a line that sets
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

// What an action must undo if it stops half-way (a fatal, wp_die(), an error). They run after the
// failure is answered, so that a cleanup dying as well (memory exhausted, database gone) cannot
// take the answer with it; the process still ends only when they are done.
$GLOBALS['wpgate_cleanups'] = array();

function wpgate_on_failure( callable $cleanup ) {
	$GLOBALS['wpgate_cleanups'][] = $cleanup;
}

function wpgate_run_cleanups() {
	$cleanups = array_reverse( $GLOBALS['wpgate_cleanups'] );
	$GLOBALS['wpgate_cleanups'] = array();
	foreach ( $cleanups as $cleanup ) {
		try {
			call_user_func( $cleanup );
		} catch ( Throwable $error ) {
			// The first failure is the one to report; a cleanup that fails too must not hide it.
		}
	}
}

function wpgate_fail( $kind, $message, array $extra = array() ) {
	wpgate_answer( array( 'ok' => false, 'error' => array_merge( array( 'kind' => $kind, 'message' => $message ), $extra ) ) );
	wpgate_run_cleanups();
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

// The files WordPress loads from wp-content by name, besides plugins and themes.
function wpgate_dropin_names() {
	return array( 'advanced-cache.php', 'db.php', 'db-error.php', 'install.php', 'maintenance.php', 'object-cache.php',
		'php-error.php', 'fatal-error-handler.php', 'sunrise.php', 'blog-deleted.php', 'blog-inactive.php', 'blog-suspended.php' );
}

// An exit while WordPress loads, named by the last file of the site (not of WordPress itself) that
// PHP loaded before it: when that is a drop-in, the drop-in ended the process.
function wpgate_exit_error() {
	$message = 'WordPress stopped before it could answer (exit or die called while loading)';
	$root    = rtrim( $GLOBALS['wpgate_request']['path'], '/' ) . '/';
	$content = defined( 'WP_CONTENT_DIR' ) ? rtrim( WP_CONTENT_DIR, '/' ) . '/' : $root . 'wp-content/';
	$last    = null;
	foreach ( get_included_files() as $file ) {
		if ( 0 === strpos( $file, $root . 'wp-includes/' ) || 0 === strpos( $file, $root . 'wp-admin/' ) ) {
			continue;
		}
		if ( 0 === strpos( $file, $root ) || 0 === strpos( $file, $content ) ) {
			$last = $file;
		}
	}
	if ( null === $last ) {
		return array( 'kind' => 'exit', 'message' => $message );
	}
	$shown = 0 === strpos( $last, $root ) ? substr( $last, strlen( $root ) ) : $last;
	if ( dirname( $last ) . '/' === $content && in_array( basename( $last ), wpgate_dropin_names(), true ) ) {
		$name = '';
		$head = (string) @file_get_contents( $last, false, null, 0, 8192 );
		if ( preg_match( '/^[ \t\/*#@]*Plugin Name:(.*)$/mi', $head, $match ) ) {
			$name = ' (' . trim( preg_replace( '/\s*(?:\*\/|\?>).*/', '', $match[1] ) ) . ')';
		}
		$message = "the drop-in $shown$name ended PHP while WordPress loaded, before wpgate could answer; "
			. 'wpgate needs it to let a PHP CLI process through';
	} else {
		$message .= ", last in $shown";
	}
	return array( 'kind' => 'exit', 'message' => $message );
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
			wpgate_answer( array( 'ok' => false, 'error' => wpgate_exit_error() ) );
		}
		wpgate_run_cleanups();
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
// The database upgrade loads WordPress as wp-admin/upgrade.php does: installing, so without plugins or theme.
if ( 'upgrade_db' === $wpgate_request['action'] ) {
	define( 'WP_INSTALLING', true );
}

// Hooks set before WordPress loads, in the form wp-includes/plugin.php turns into WP_Hook objects.
function wpgate_early_hook( $name, $callback, $priority = 10, $accepted_args = 1 ) {
	$GLOBALS['wp_filter'][ $name ][ $priority ][] = array( 'function' => $callback, 'accepted_args' => $accepted_args );
}

// A page cache's advanced-cache.php (WP Super Cache, W3 Total Cache, WP Rocket...) would answer this
// faked GET from its files and exit before WordPress loads. WordPress's own switch for runtimes that
// are not a web request keeps it out; the plugins themselves still load, and purge through their own
// functions, which live in the plugins rather than in the drop-in.
wpgate_early_hook( 'enable_loading_advanced_cache_dropin', function () { return false; } );
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

// The actions that need only wp-config.php's constants and the database connection load WordPress as
// far as that (SHORTINIT, WordPress's own switch): no plugin, theme or most of core is compiled, a
// fifth of the time. Keep this list to actions that call nothing past wp-settings.php's SHORTINIT return.
if ( in_array( $wpgate_request['action'], array( 'backup_facts', 'table_stats', 'log_facts' ), true )
	&& ! defined( 'SHORTINIT' ) ) {
	define( 'SHORTINIT', true );
}

chdir( $wpgate_root );
require "$wpgate_root/wp-load.php";

if ( is_admin() ) {
	require_once ABSPATH . 'wp-admin/includes/admin.php';
}

