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
		'site_url'    => site_url(),
		'paths'       => array(
			'abspath' => rtrim( ABSPATH, '/' ),
			'content' => WP_CONTENT_DIR,
			'plugins' => WP_PLUGIN_DIR,
			'themes'  => get_theme_root(),
		),
	);
}

/*
 * Applying one update: WordPress's own upgrader classes install one component from a zip that
 * wpgate has already put on the host (a copy: the package is consumed). The plugin and theme
 * paths follow the Dashboard's "Update now" (wp_ajax_update_plugin / wp_ajax_update_theme since
 * WordPress 4.2), the core path follows Core_Upgrader as update-core.php drives it, except that
 * the database is upgraded afterwards by upgrade_db, in a fresh PHP process that runs the new code.
 */

// The three parameters every install action takes; anything odd is refused before the site changes.
function wpgate_upgrade_params( array $params, $kind ) {
	$slug    = isset( $params['slug'] ) ? (string) $params['slug'] : '';
	$package = isset( $params['package'] ) ? (string) $params['package'] : '';
	$version = isset( $params['version'] ) ? (string) $params['version'] : '';
	if ( 'core' !== $kind && ! preg_match( '/^[a-z0-9][a-z0-9._-]*$/', $slug ) ) {
		wpgate_fail( 'bad_request', "install_$kind: " . var_export( $slug, true ) . ' is not a slug' );
	}
	if ( ! preg_match( '/^[0-9A-Za-z][0-9A-Za-z.+-]*$/', $version ) ) {
		wpgate_fail( 'bad_request', "install_$kind $slug: " . var_export( $version, true ) . ' is not a version' );
	}
	$label = 'core' === $kind ? "WordPress $version" : "$kind $slug $version";
	if ( '' === $package || '/' !== $package[0] ) {
		wpgate_fail( 'bad_request', "$label: the package must be an absolute path on the site's host, not " . var_export( $package, true ) );
	}
	if ( ! is_file( $package ) || ! is_readable( $package ) ) {
		wpgate_fail( 'upgrade_failed', "$label: no package to install at $package (missing or unreadable)" );
	}
	$upgrade_dir = trailingslashit( WP_CONTENT_DIR ) . 'upgrade/';
	if ( 0 === strpos( $package, $upgrade_dir ) ) {
		// WP_Upgrader::unpack_package() empties that folder before it unpacks.
		wpgate_fail( 'bad_request', "$label: the package $package must not be inside $upgrade_dir: WordPress empties that folder before unpacking" );
	}
	// The package is a copy made for this call: consumed whatever happens, as WordPress consumes a download.
	wpgate_on_failure(
		function () use ( $package ) {
			if ( is_file( $package ) ) {
				@unlink( $package );
			}
		}
	);
	return array( $slug, $package, $version );
}

// The names in a zip archive, read with whichever reader WordPress itself would use here.
function wpgate_zip_entries( $package ) {
	if ( class_exists( 'ZipArchive', false ) ) {
		$zip    = new ZipArchive();
		$opened = $zip->open( $package, defined( 'ZipArchive::RDONLY' ) ? ZipArchive::RDONLY : 0 );
		if ( true !== $opened ) {
			return new WP_Error( 'wpgate_bad_zip', "$package is not a readable zip archive (ZipArchive error $opened)" );
		}
		$names = array();
		for ( $index = 0; $index < $zip->numFiles; $index++ ) {
			$names[] = $zip->getNameIndex( $index );
		}
		$zip->close();
		return $names;
	}
	require_once ABSPATH . 'wp-admin/includes/class-pclzip.php';
	$archive = new PclZip( $package );
	$listing = $archive->listContent();
	if ( ! is_array( $listing ) ) {
		return new WP_Error( 'wpgate_bad_zip', "$package is not a readable zip archive (" . $archive->errorInfo( true ) . ')' );
	}
	return wp_list_pluck( $listing, 'filename' );
}

// The start of one file in a zip archive (enough for its headers), or null.
function wpgate_zip_read( $package, $name, $length = 8192 ) {
	if ( class_exists( 'ZipArchive', false ) ) {
		$zip = new ZipArchive();
		if ( true !== $zip->open( $package, defined( 'ZipArchive::RDONLY' ) ? ZipArchive::RDONLY : 0 ) ) {
			return null;
		}
		$stream = $zip->getStream( $name );
		$text   = $stream ? fread( $stream, $length ) : false;
		if ( $stream ) {
			fclose( $stream );
		}
		$zip->close();
		return false === $text ? null : $text;
	}
	require_once ABSPATH . 'wp-admin/includes/class-pclzip.php';
	$archive   = new PclZip( $package );
	$extracted = $archive->extract( PCLZIP_OPT_BY_NAME, $name, PCLZIP_OPT_EXTRACT_AS_STRING );
	return is_array( $extracted ) && isset( $extracted[0]['content'] ) ? substr( $extracted[0]['content'], 0, $length ) : null;
}

// A header of a plugin file or style.css, in the form get_file_data() reads.
function wpgate_header( $text, $name ) {
	if ( preg_match( '/^(?:[ \t]*<\?php)?[ \t\/*#@]*' . preg_quote( $name, '/' ) . ':(.*)$/mi', (string) $text, $match ) ) {
		return trim( preg_replace( '/\s*(?:\*\/|\?>).*/', '', $match[1] ) );
	}
	return '';
}

/**
 * Reads the package before anything changes: one top folder SLUG/ holding the component at the
 * expected version. WordPress would install a zip whose folder has another name beside the old
 * one (and delete the old one); it is refused here, and again by a source-selection guard.
 */
function wpgate_check_component_zip( $kind, $slug, $package, $version, $preferred_file = '' ) {
	$entries = wpgate_zip_entries( $package );
	if ( is_wp_error( $entries ) ) {
		wpgate_fail( 'upgrade_failed', "$kind $slug $version: " . $entries->get_error_message() );
	}
	if ( ! $entries ) {
		wpgate_fail( 'upgrade_failed', "$kind $slug $version: the package $package is an empty zip archive" );
	}
	$tops = array();
	foreach ( $entries as $entry ) {
		$tops[ strtok( ltrim( $entry, '/' ), '/' ) ] = true;
		if ( preg_match( '#(^|/)\.\.(/|$)#', $entry ) ) {
			wpgate_fail( 'upgrade_failed', "$kind $slug $version: the package holds a path outside its folder: $entry" );
		}
	}
	if ( array( $slug ) !== array_keys( $tops ) ) {
		$found = implode( '/, ', array_keys( $tops ) ) . '/';
		wpgate_fail( 'upgrade_failed', "$kind $slug $version: the package's top folder is $found, not $slug/ (it is not the $kind $slug)" );
	}
	if ( 'theme' === $kind ) {
		$style = wpgate_zip_read( $package, "$slug/style.css" );
		if ( null === $style || '' === wpgate_header( $style, 'Theme Name' ) ) {
			wpgate_fail( 'upgrade_failed', "theme $slug $version: the package has no $slug/style.css with a Theme Name header" );
		}
		$found_version = wpgate_header( $style, 'Version' );
	} else {
		// The main plugin file: the installed one's name first, then any top-level PHP file with a Plugin Name.
		$candidates = preg_grep( '#^' . preg_quote( $slug, '#' ) . '/[^/]+\.php$#', $entries );
		usort(
			$candidates,
			function ( $a, $b ) use ( $preferred_file ) {
				return (int) ( $b === $preferred_file ) - (int) ( $a === $preferred_file ) ?: strcmp( $a, $b );
			}
		);
		$found_version = null;
		foreach ( $candidates as $candidate ) {
			$text = wpgate_zip_read( $package, $candidate );
			if ( '' !== wpgate_header( $text, 'Plugin Name' ) ) {
				$found_version = wpgate_header( $text, 'Version' );
				break;
			}
		}
		if ( null === $found_version ) {
			wpgate_fail( 'upgrade_failed', "plugin $slug $version: the package has no PHP file with a Plugin Name header directly in $slug/" );
		}
	}
	if ( $found_version !== $version ) {
		wpgate_fail( 'upgrade_failed', "$kind $slug $version: the package holds version " . ( '' === $found_version ? '(none)' : $found_version ) . ", not $version" );
	}
}

/**
 * A core package is WordPress's own layout, wordpress/..., with the core files only. A
 * wp-config.php in it would replace the site's (the site goes down); a wp-content/ in it would
 * let update_core() copy "new bundled" themes and plugins that are not in the release.
 */
function wpgate_check_core_zip( $package, $version ) {
	$entries = wpgate_zip_entries( $package );
	if ( is_wp_error( $entries ) ) {
		wpgate_fail( 'upgrade_failed', "WordPress $version: " . $entries->get_error_message() );
	}
	$names = array_flip( $entries );
	foreach ( $entries as $entry ) {
		if ( 0 !== strpos( $entry, 'wordpress/' ) || preg_match( '#(^|/)\.\.(/|$)#', $entry ) ) {
			wpgate_fail( 'upgrade_failed', "WordPress $version: the package holds $entry, outside its wordpress/ folder" );
		}
		if ( 'wordpress/wp-config.php' === $entry ) {
			wpgate_fail( 'upgrade_failed', "WordPress $version: the package carries a wp-config.php, which would replace the site's: refused" );
		}
		if ( 0 === strpos( $entry, 'wordpress/wp-content/' ) ) {
			wpgate_fail( 'upgrade_failed', "WordPress $version: the package carries wp-content/ ($entry): a core package holds the core files only" );
		}
	}
	foreach ( array( 'wordpress/wp-includes/version.php', 'wordpress/readme.html', 'wordpress/wp-admin/includes/update-core.php' ) as $required ) {
		if ( ! isset( $names[ $required ] ) ) {
			wpgate_fail( 'upgrade_failed', "WordPress $version: the package has no $required, so it is not a WordPress core package" );
		}
	}
	$found = wpgate_core_version( wpgate_zip_read( $package, 'wordpress/wp-includes/version.php', 65536 ) );
	if ( $found !== $version ) {
		wpgate_fail( 'upgrade_failed', "WordPress $version: the package holds WordPress " . ( $found ? $found : '(unknown)' ) . ", not $version" );
	}
}

// $wp_version as a wp-includes/version.php text assigns it.
function wpgate_core_version( $text ) {
	return preg_match( '/\$wp_version\s*=\s*\'([^\']+)\'/', (string) $text, $match ) ? $match[1] : null;
}

// $wp_db_version as a wp-includes/version.php text assigns it.
function wpgate_core_db_version( $text ) {
	return preg_match( '/\$wp_db_version\s*=\s*(\d+)/', (string) $text, $match ) ? (int) $match[1] : null;
}

/**
 * Acts as an administrator who may do the update, as the Dashboard's user would: some plugins'
 * upgrader hooks check capabilities. With DISALLOW_FILE_MODS nobody has the capability; the site's
 * owner deploys by other means then, as with WP-CLI, so the first administrator is used.
 */
function wpgate_become_updater( $capability ) {
	$candidates = array();
	if ( is_multisite() ) {
		foreach ( get_super_admins() as $login ) {
			$user = get_user_by( 'login', $login );
			if ( $user ) {
				$candidates[] = $user;
			}
		}
	}
	$candidates = array_merge( $candidates, get_users( array( 'role' => 'administrator', 'orderby' => 'ID', 'order' => 'ASC', 'number' => 50 ) ) );
	foreach ( $candidates as $user ) {
		if ( user_can( $user, $capability ) ) {
			wp_set_current_user( $user->ID );
			return $user->user_login;
		}
	}
	if ( $candidates ) {
		wp_set_current_user( $candidates[0]->ID );
		return $candidates[0]->user_login;
	}
	return null;
}

/**
 * What every install action does first. Returns what the final cleanup needs; that cleanup also
 * runs when the action stops half-way (an error, a fatal, wp_die()).
 */
function wpgate_upgrade_start( $package, $capability, array $params = array() ) {
	require_once ABSPATH . 'wp-admin/includes/class-wp-upgrader.php';
	require_once ABSPATH . 'wp-admin/includes/plugin.php';
	$state = array(
		'started'            => microtime( true ),
		'package'            => $package,
		'maintenance_before' => file_exists( ABSPATH . '.maintenance' ),
		'hold_maintenance'   => ! empty( $params['hold_maintenance'] ),
		'user'               => wpgate_become_updater( $capability ),
	);
	if ( $state['hold_maintenance'] ) {
		$drain = isset( $params['drain_seconds'] ) ? min( 10.0, max( 0.0, (float) $params['drain_seconds'] ) ) : 0.0;
		wpgate_hold_maintenance( $drain, $state['maintenance_before'] );
	}
	// After an update WordPress asks its update API for news and fetches translations. The bridge
	// blocks those requests (a failed check would only silence the site's own checks for hours),
	// and translations are not in the release: WordPress's Language_Pack_Upgrader unhooks the same four.
	remove_action( 'upgrader_process_complete', array( 'Language_Pack_Upgrader', 'async_upgrade' ), 20 );
	remove_action( 'upgrader_process_complete', 'wp_version_check' );
	remove_action( 'upgrader_process_complete', 'wp_update_plugins' );
	remove_action( 'upgrader_process_complete', 'wp_update_themes' );
	wpgate_on_failure(
		function () use ( $state ) {
			wpgate_upgrade_cleanup( $state );
		}
	);
	return $state;
}

/**
 * Maintenance mode off unless it was on before, the package copy gone (WordPress deletes it in
 * some paths only), and the folder WordPress unpacked it to gone: an upgrade that fails before
 * installing leaves that in wp-content/upgrade/.
 */
function wpgate_upgrade_cleanup( array $state ) {
	if ( ! $state['maintenance_before'] && ! $state['hold_maintenance'] && file_exists( ABSPATH . '.maintenance' ) ) {
		@unlink( ABSPATH . '.maintenance' );
	}
	if ( is_file( $state['package'] ) ) {
		@unlink( $state['package'] );
	}
	// The name WP_Upgrader::unpack_package() gives the folder.
	$working = basename( basename( $state['package'], '.tmp' ), '.zip' );
	if ( '' !== $working && '.' !== $working && '..' !== $working ) {
		wpgate_remove_tree( trailingslashit( WP_CONTENT_DIR ) . "upgrade/$working" );
	}
}

/**
 * Keeps WordPress's maintenance file once the upgrader has written it: update_core() deletes it as
 * soon as the core files are in, WP_Upgrader::maintenance_mode( false ) as soon as a plugin's or
 * theme's are. The web server's PHP may then still run code it compiled from the old files, mixed
 * with the new ones (OPcache revalidates every revalidate_freq seconds, or never). wpgate removes
 * the file itself once it has reset the web server's OPcache (and, for core, upgraded the database).
 *
 * The upgrader's filesystem is swapped for one that refuses to delete that one file, right before
 * the package is fetched: after the last WP_Filesystem() call of every upgrader path, before any
 * file changes. The swap is on the global that update_core() and maintenance_mode() use.
 *
 * Once maintenance is on, files change only after `drain` seconds: a request that had passed
 * WordPress's maintenance check just before would otherwise load half its code from the old files
 * and half from the new (a theme's templates gone from under it: an empty page).
 */
function wpgate_hold_maintenance( $drain, $maintenance_before ) {
	add_filter(
		'upgrader_pre_download',
		function ( $reply ) use ( $drain, $maintenance_before ) {
			global $wp_filesystem;
			if ( $wp_filesystem instanceof WP_Filesystem_Direct && ! $wp_filesystem instanceof Wpgate_Filesystem_Holding ) {
				wpgate_declare_holding_filesystem();
				$wp_filesystem        = new Wpgate_Filesystem_Holding( null );
				$wp_filesystem->drain = $drain;
			}
			// Plugins' and themes' bulk_upgrade() turned maintenance on already; update_core() does it later.
			clearstatcache( true, ABSPATH . '.maintenance' ); // written since the bridge last looked
			if ( ! $maintenance_before && file_exists( ABSPATH . '.maintenance' ) ) {
				$wp_filesystem->drain_once();
			}
			return $reply;
		},
		PHP_INT_MAX
	);
}

// Declared on demand: WP_Filesystem_Direct exists only once an upgrader has connected.
function wpgate_declare_holding_filesystem() {
	if ( class_exists( 'Wpgate_Filesystem_Holding', false ) ) {
		return;
	}
	class Wpgate_Filesystem_Holding extends WP_Filesystem_Direct {
		public $drain       = 0.0;
		public $maintenance = 'hold'; // hold: written, never deleted; skip: never written (a swap)
		private $drained    = false;

		public function delete( $file, $recursive = false, $type = false ) {
			if ( wpgate_is_maintenance_file( $file ) ) {
				return true; // removed by wpgate after the web server's OPcache reset, or never there
			}
			return parent::delete( $file, $recursive, $type );
		}

		public function put_contents( $file, $contents, $mode = false ) {
			if ( 'skip' === $this->maintenance && wpgate_is_maintenance_file( $file ) ) {
				return true;
			}
			$written = parent::put_contents( $file, $contents, $mode );
			if ( $written && wpgate_is_maintenance_file( $file ) ) {
				$this->drain_once();
			}
			return $written;
		}

		public function drain_once() {
			if ( ! $this->drained && $this->drain > 0 ) {
				usleep( (int) ( $this->drain * 1000000 ) );
			}
			$this->drained = true;
		}
	}
}

function wpgate_is_maintenance_file( $file ) {
	return wp_normalize_path( (string) $file ) === wp_normalize_path( ABSPATH . '.maintenance' );
}

function wpgate_remove_tree( $path ) {
	if ( is_link( $path ) || is_file( $path ) ) {
		@unlink( $path );
		return;
	}
	if ( ! is_dir( $path ) ) {
		return;
	}
	foreach ( scandir( $path ) as $name ) {
		if ( '.' !== $name && '..' !== $name ) {
			wpgate_remove_tree( "$path/$name" );
		}
	}
	@rmdir( $path );
}

/**
 * Lets WordPress see one update offer, ours, in the site transient TRANSIENT while the upgrader
 * runs; the stored transient is not written, so no other offer can be acted on and a crash leaves
 * no offer pointing at a local file. Returns the function that ends this and puts the stored
 * transient back as it was, minus a stored offer for KEY (now fulfilled, it would be stale).
 */
function wpgate_offer_only( $transient, $key, $offer ) {
	$stored = get_site_transient( $transient );
	$only   = (object) array(
		'last_checked' => time(),
		'checked'      => array(),
		'response'     => null === $offer ? array() : array( $key => $offer ),
		'no_update'    => array(),
		'translations' => array(),
	);
	$filter = function () use ( $only ) {
		return $only;
	};
	add_filter( "pre_site_transient_$transient", $filter, PHP_INT_MAX );
	$done = false;
	$end  = function ( $fulfilled = null ) use ( $transient, $filter, $stored, $key, &$done ) {
		if ( $done ) {
			return;
		}
		$done = true;
		remove_filter( "pre_site_transient_$transient", $filter, PHP_INT_MAX );
		$fulfilled = null === $fulfilled ? $key : $fulfilled;
		$wanted    = $stored;
		if ( is_object( $wanted ) && isset( $wanted->response[ $fulfilled ] ) ) {
			$wanted = clone $wanted;
			unset( $wanted->response[ $fulfilled ] );
		}
		$now = get_site_transient( $transient );
		if ( false === $stored ) {
			if ( false !== $now ) {
				delete_site_transient( $transient );
			}
		} elseif ( serialize( $now ) !== serialize( $wanted ) ) {
			set_site_transient( $transient, $wanted );
		}
	};
	wpgate_on_failure( $end );
	return $end;
}

/**
 * Refuses, after unpacking and before anything is removed, a package whose folder is not FOLDER
 * (added last, so it also sees what other source-selection filters made of it).
 */
function wpgate_guard_source_folder( $folder, $label ) {
	$guard = function ( $source ) use ( $folder, $label ) {
		if ( is_wp_error( $source ) ) {
			return $source;
		}
		$found = basename( untrailingslashit( $source ) );
		if ( $found !== $folder ) {
			return new WP_Error( 'wpgate_wrong_folder', "the unpacked package is $found/, not $folder/: it is not $label" );
		}
		return $source;
	};
	add_filter( 'upgrader_source_selection', $guard, PHP_INT_MAX );
	return $guard;
}

/*
 * Plugins and themes are swapped in, never copied over the live folder. WordPress's upgrader runs as the
 * Dashboard's "Update now" runs it, but installs into STAGED (the run's folder, on the live folder's
 * filesystem, outside the web root) instead of over the live folder; the staged files are checked against
 * the artifact's; then two renames, one right after the other, put the live folder at ASIDE and the staged
 * one in its place. A visitor meets the old folder whole or the new one whole, so no maintenance page is
 * needed and bulk_upgrade()'s maintenance file is not written. The upgrader's hooks fire as they do there:
 * upgrader_pre_install, upgrader_source_selection, upgrader_clear_destination (on the staged folder),
 * upgrader_post_install (the swap is done after every other filter of it), and upgrader_process_complete
 * with action "update", once the new folder is live; the active state is never touched.
 */

// The swap's paths, checked; null when the caller asked for an update in place.
function wpgate_swap_params( array $params, $kind, $slug, $version ) {
	if ( empty( $params['swap'] ) ) {
		return null;
	}
	$swap  = $params['swap'];
	$label = "$kind $slug $version";
	foreach ( array( 'live', 'staged', 'aside' ) as $key ) {
		if ( ! isset( $swap[ $key ] ) || ! is_string( $swap[ $key ] ) || '' === $swap[ $key ] || '/' !== $swap[ $key ][0] || preg_match( '#(^|/)\.\.(/|$)#', $swap[ $key ] ) ) {
			wpgate_fail( 'bad_request', "$label: the swap's $key must be an absolute path, not " . var_export( isset( $swap[ $key ] ) ? $swap[ $key ] : null, true ) );
		}
	}
	if ( ! isset( $swap['files'] ) || ! is_array( $swap['files'] ) || ! $swap['files'] ) {
		wpgate_fail( 'bad_request', "$label: the swap names no files to check the unpacked package against" );
	}
	$live = 'plugin' === $kind ? WP_PLUGIN_DIR . "/$slug" : get_theme_root( $slug ) . "/$slug";
	if ( wp_normalize_path( $live ) !== wp_normalize_path( $swap['live'] ) ) {
		wpgate_fail( 'bad_request', "$label: WordPress keeps it in $live, not in {$swap['live']}" );
	}
	clearstatcache();
	if ( file_exists( $swap['aside'] ) || is_link( $swap['aside'] ) ) {
		wpgate_fail( 'upgrade_failed', "$label: {$swap['aside']} exists already, where the live folder would go aside: nothing was changed" );
	}
	wpgate_remove_tree( $swap['staged'] ); // what a run stopped half-way through an earlier try left
	if ( ! wp_mkdir_p( dirname( $swap['staged'] ) ) || ! wp_mkdir_p( dirname( $swap['aside'] ) ) ) {
		wpgate_fail( 'upgrade_failed', "$label: cannot create " . dirname( $swap['staged'] ) . ' or ' . dirname( $swap['aside'] ) );
	}
	return $swap;
}

/**
 * Points UPGRADER at the staged folder and swaps the result in when its post-install filters are done.
 * Returns the swap's state: `swapped` once the new folder is live.
 */
function wpgate_swap_hooks( $upgrader, array $swap, $kind, $slug, $version ) {
	$state = new ArrayObject( array( 'swapped' => false ) );
	// Into the staged folder, with no temporary backup of the live one (6.3+ would move it away meanwhile).
	$options = function ( $options ) use ( $swap ) {
		$options['destination']       = $swap['staged'];
		$options['clear_destination'] = true;
		unset( $options['hook_extra']['temp_backup'] );
		return $options;
	};
	// bulk_upgrade() and install() remove the old folder through this filter: here it stays until the swap.
	$keep_live = function ( $response ) use ( $upgrader ) {
		remove_filter( 'upgrader_clear_destination', array( $upgrader, 'delete_old_plugin' ), 10 );
		remove_filter( 'upgrader_clear_destination', array( $upgrader, 'delete_old_theme' ), 10 );
		return $response;
	};
	// WordPress names the installed folder after its destination; Theme_Upgrader::current_after() would
	// switch the active theme to that name, which must stay the slug.
	$name = function ( $response ) use ( $upgrader, $slug ) {
		if ( is_array( $upgrader->result ) ) {
			$upgrader->result['destination_name'] = $slug;
		}
		return $response;
	};
	$swap_in = function ( $response ) use ( $upgrader, $swap, $kind, $slug, $version, $state ) {
		if ( is_wp_error( $response ) || ! $response ) {
			return $response;
		}
		$problem = wpgate_check_staged( $kind, $slug, $version, $swap );
		if ( null === $problem ) {
			$problem = wpgate_rename_swap( $swap['live'], $swap['staged'], $swap['aside'] );
		}
		if ( null !== $problem ) {
			return new WP_Error( 'wpgate_swap', $problem );
		}
		$state['swapped'] = true;
		// WordPress's account of where the files went, as after an update in place.
		if ( is_array( $upgrader->result ) ) {
			$upgrader->result = array_merge(
				$upgrader->result,
				array(
					'destination'        => trailingslashit( $swap['live'] ),
					'destination_name'   => $slug,
					'local_destination'  => dirname( $swap['live'] ),
					'remote_destination' => trailingslashit( $swap['live'] ),
				)
			);
		}
		return $response;
	};
	add_filter( 'upgrader_package_options', $options, PHP_INT_MAX );
	add_filter( 'upgrader_pre_install', $keep_live, PHP_INT_MAX );
	add_filter( 'upgrader_post_install', $name, PHP_INT_MIN );
	add_filter( 'upgrader_post_install', $swap_in, PHP_INT_MAX );
	$state['end'] = function () use ( $options, $keep_live, $name, $swap_in ) {
		remove_filter( 'upgrader_package_options', $options, PHP_INT_MAX );
		remove_filter( 'upgrader_pre_install', $keep_live, PHP_INT_MAX );
		remove_filter( 'upgrader_post_install', $name, PHP_INT_MIN );
		remove_filter( 'upgrader_post_install', $swap_in, PHP_INT_MAX );
	};
	wpgate_on_failure(
		function () use ( $swap, $state ) {
			if ( ! $state['swapped'] ) {
				wpgate_remove_tree( $swap['staged'] );
			}
		}
	);
	return $state;
}

// What is wrong with the staged folder (the version, a file missing or not the artifact's), or null.
function wpgate_check_staged( $kind, $slug, $version, array $swap ) {
	$folder = $swap['staged'];
	clearstatcache();
	if ( 'theme' === $kind ) {
		$found = is_file( "$folder/style.css" ) ? get_file_data( "$folder/style.css", array( 'Version' => 'Version' ) ) : null;
		$found = $found ? $found['Version'] : null;
	} else {
		$found = null;
		foreach ( glob( "$folder/*.php" ) ?: array() as $file ) {
			$data = get_plugin_data( $file, false, false );
			if ( '' !== $data['Name'] ) {
				$found = $data['Version'];
				break;
			}
		}
	}
	if ( $found !== $version ) {
		return "$kind $slug $version: unpacked into $folder, it says version " . ( null === $found || '' === $found ? '(none)' : $found ) . ': the live folder was not changed';
	}
	$differ = array();
	foreach ( $swap['files'] as $name => $sha256 ) {
		$path = "$folder/$name";
		if ( ! is_file( $path ) || ! hash_equals( (string) $sha256, (string) hash_file( 'sha256', $path ) ) ) {
			$differ[] = $name;
		}
	}
	if ( $differ ) {
		return "$kind $slug $version: " . count( $differ ) . " unpacked files differ from the artifact's, e.g. " . implode( ', ', array_slice( $differ, 0, 3 ) ) . ': the live folder was not changed';
	}
	return null;
}

/**
 * LIVE to ASIDE, then STAGED to LIVE, with nothing in between: the folder is missing only for the time
 * between two rename() calls. When the second fails the first is undone. What went wrong, or null.
 */
function wpgate_rename_swap( $live, $staged, $aside ) {
	$had_live = file_exists( $live ) || is_link( $live );
	if ( $had_live && ! @rename( $live, $aside ) ) {
		$error = error_get_last();
		return "cannot move $live aside to $aside: " . ( $error ? $error['message'] : 'rename failed' ) . ': the live folder was not changed';
	}
	if ( ! @rename( $staged, $live ) ) {
		$error = error_get_last();
		$error = $error ? $error['message'] : 'rename failed';
		if ( $had_live && ! @rename( $aside, $live ) ) {
			return "cannot move the new version from $staged to $live ($error), nor the old one back from $aside: it is there";
		}
		return "cannot move the new version from $staged to $live ($error): the live folder was put back";
	}
	return null;
}

/**
 * The Dashboard's skin, except that the maintenance file bulk_upgrade() writes while an active plugin or
 * theme changes is not written: with a swap, no visitor meets a half-updated folder. The upgrader tells its
 * skin right before it writes the file; the filesystem it writes with is then one that skips that file.
 */
function wpgate_swap_skin() {
	if ( ! class_exists( 'Wpgate_Swap_Skin', false ) ) {
		class Wpgate_Swap_Skin extends WP_Ajax_Upgrader_Skin {
			public function feedback( $feedback, ...$args ) {
				global $wp_filesystem;
				if ( 'maintenance_start' === $feedback && $wp_filesystem instanceof WP_Filesystem_Direct ) {
					wpgate_declare_holding_filesystem();
					$holding              = new Wpgate_Filesystem_Holding( null );
					$holding->maintenance = 'skip';
					$wp_filesystem        = $holding;
				}
				parent::feedback( $feedback, ...$args );
			}
		}
	}
	return new Wpgate_Swap_Skin();
}

/**
 * WordPress 6.3+ moves the old version to wp-content/upgrade-temp-backup/ while it installs and,
 * when the PHP process ends, deletes that copy (success) or moves it back (failure). It is done
 * here, before the answer, so that the answer describes the site as it is left.
 */
function wpgate_finish_temp_backups( $upgrader ) {
	$problems = array();
	foreach ( array( 'restore_temp_backup' => 10, 'delete_temp_backup' => 100 ) as $method => $priority ) {
		if ( ! method_exists( $upgrader, $method ) || false === has_action( 'shutdown', array( $upgrader, $method ) ) ) {
			continue;
		}
		remove_action( 'shutdown', array( $upgrader, $method ), $priority );
		$result = $upgrader->$method();
		if ( is_wp_error( $result ) ) {
			$problems[] = wpgate_plain( implode( ' ', $result->get_error_messages() ) );
		}
	}
	return $problems;
}

// One line from everything WordPress said went wrong: the result's errors, then the skin's.
function wpgate_upgrader_failure( $skin, $result, array $more = array() ) {
	$messages = array();
	if ( is_wp_error( $result ) ) {
		foreach ( $result->get_error_codes() as $code ) {
			$data       = $result->get_error_data( $code );
			$messages[] = $result->get_error_message( $code ) . ( is_string( $data ) && '' !== $data ? ' ' . $data : '' );
		}
	}
	if ( $skin && method_exists( $skin, 'get_error_messages' ) ) {
		$messages[] = $skin->get_error_messages();
	}
	if ( false === $result ) {
		$messages[] = 'WordPress could not reach the files (the filesystem connection failed)';
	}
	$messages = array_merge( $messages, $more );
	$messages = array_values( array_unique( array_filter( array_map( 'wpgate_plain', $messages ) ) ) );
	if ( ! $messages && $skin ) {
		$messages = array_slice( array_map( 'wpgate_plain', $skin->get_upgrade_messages() ), -3 );
	}
	return $messages ? implode( '; ', $messages ) : 'the upgrader gave no reason';
}

// The installed plugin's main file for a folder SLUG (the one named SLUG.php first), or null.
function wpgate_plugin_file( $slug ) {
	wp_clean_plugins_cache( false );
	$found = array_keys( get_plugins( '/' . $slug ) );
	if ( ! $found || ! is_dir( WP_PLUGIN_DIR . '/' . $slug ) ) {
		return null;
	}
	return "$slug/" . ( in_array( "$slug.php", $found, true ) ? "$slug.php" : $found[0] );
}

/**
 * Installs plugin SLUG at VERSION from PACKAGE.
 *
 * Present: Plugin_Upgrader::bulk_upgrade(), as the Dashboard's "Update now". It keeps the plugin
 * active (upgrade() would deactivate it and leave the reactivation to a later request), turns
 * maintenance mode on only while an active plugin's files change, and fires
 * upgrader_process_complete with action "update", which plugins use to migrate.
 * Absent (wpgate moved the current folder aside): there is no installed plugin to update. Up to
 * 6.2 bulk_upgrade() would install it all the same; 6.3+ fails ("Could not move the old version
 * to the upgrade-temp-backup directory") and leaves an empty plugin folder and the unpacked
 * package behind. So the package is installed with Plugin_Upgrader::install(), overwrite allowed,
 * as an uploaded zip is: the old code is not loaded, so no hook of it could react to an update
 * anyway; active_plugins is not touched, so an active plugin stays active; WordPress fires its
 * own upgrader_process_complete with action "install" and nothing else is fired here.
 */
function wpgate_action_install_plugin( array $params ) {
	list( $slug, $package, $version ) = wpgate_upgrade_params( $params, 'plugin' );
	$label = "plugin $slug $version";
	if ( is_file( WP_PLUGIN_DIR . "/$slug.php" ) && ! is_dir( WP_PLUGIN_DIR . "/$slug" ) ) {
		wpgate_fail( 'upgrade_failed', "$label: the installed plugin is the single file $slug.php, and a packaged plugin is a folder $slug/: not supported" );
	}
	require_once ABSPATH . 'wp-admin/includes/plugin.php';
	$file = wpgate_plugin_file( $slug );
	wpgate_check_component_zip( 'plugin', $slug, $package, $version, $file ? $file : "$slug/$slug.php" );
	$swap  = wpgate_swap_params( $params, 'plugin', $slug, $version );
	$state = wpgate_upgrade_start( $package, 'update_plugins', $params );

	$skin     = $swap ? wpgate_swap_skin() : new WP_Ajax_Upgrader_Skin();
	$upgrader = new Plugin_Upgrader( $skin );
	$guard    = wpgate_guard_source_folder( $slug, "the plugin $slug" );
	$swapping = $swap ? wpgate_swap_hooks( $upgrader, $swap, 'plugin', $slug, $version ) : null;
	if ( $file ) {
		$method     = 'bulk_upgrade';
		$end_offers = wpgate_offer_only(
			'update_plugins',
			$file,
			(object) array(
				'id'          => "wpgate/$slug",
				'slug'        => $slug,
				'plugin'      => $file,
				'new_version' => $version,
				'url'         => '',
				'package'     => $package,
			)
		);
		// clear_update_cache false: WordPress would delete the stored offers; they are put back instead.
		$results = $upgrader->bulk_upgrade( array( $file ), array( 'clear_update_cache' => false ) );
		$result  = is_array( $results ) && array_key_exists( $file, $results ) ? $results[ $file ] : $results;
		if ( true === $result ) {
			$result = new WP_Error( 'up_to_date', "WordPress saw no update offer for $file and installed nothing" );
		}
	} else {
		$method     = 'install';
		$end_offers = wpgate_offer_only( 'update_plugins', "$slug/$slug.php", null );
		$installed  = $upgrader->install( $package, array( 'overwrite_package' => true, 'clear_update_cache' => false ) );
		$result     = true === $installed ? $upgrader->result : $installed;
	}
	remove_filter( 'upgrader_source_selection', $guard, PHP_INT_MAX );
	if ( $swapping ) {
		$swapping['end']();
	}
	$problems = wpgate_finish_temp_backups( $upgrader );
	$new_file = wpgate_plugin_file( $slug );
	$end_offers( $file ? $file : $new_file );
	if ( ! $result || is_wp_error( $result ) || $skin->get_errors()->has_errors() ) {
		wpgate_fail( 'upgrade_failed', "WordPress could not install $label ($method): " . wpgate_upgrader_failure( $skin, $result, $problems ) );
	}
	if ( $swapping && ! $swapping['swapped'] ) {
		wpgate_fail( 'upgrade_failed', "$label: WordPress reported success, but the new version was never swapped in" );
	}
	if ( ! $new_file ) {
		wpgate_fail( 'upgrade_failed', "$label: WordPress reported success, but " . WP_PLUGIN_DIR . "/$slug holds no plugin" );
	}
	$data = get_plugin_data( WP_PLUGIN_DIR . '/' . $new_file, false, false );
	if ( $data['Version'] !== $version ) {
		wpgate_fail( 'upgrade_failed', "$label: WordPress reported success, but $new_file says version " . ( $data['Version'] ? $data['Version'] : '(none)' ) );
	}
	wpgate_upgrade_cleanup( $state );
	return array(
		'kind'           => 'plugin',
		'slug'           => $slug,
		'version'        => $data['Version'],
		'file'           => $new_file,
		'method'         => $method,
		'active'         => is_plugin_active( $new_file ),
		'network_active' => is_multisite() && is_plugin_active_for_network( $new_file ),
		'swapped'        => $swapping ? true : null,
		'maintenance'    => file_exists( ABSPATH . '.maintenance' ),
		'user'           => $state['user'],
		'messages'       => array_map( 'wpgate_plain', $skin->get_upgrade_messages() ),
		'warnings'       => $problems,
		'seconds'        => round( microtime( true ) - $state['started'], 3 ),
	);
}

/**
 * Installs theme SLUG at VERSION from PACKAGE: Theme_Upgrader::bulk_upgrade() when it is there
 * (the Dashboard's "Update now": maintenance mode while the active theme or its parent changes,
 * upgrader_process_complete with action "update"), Theme_Upgrader::install() with overwrite
 * when wpgate moved it aside; the stylesheet and template options are never touched.
 */
function wpgate_action_install_theme( array $params ) {
	list( $slug, $package, $version ) = wpgate_upgrade_params( $params, 'theme' );
	$label = "theme $slug $version";
	wpgate_check_component_zip( 'theme', $slug, $package, $version );
	$swap  = wpgate_swap_params( $params, 'theme', $slug, $version );
	$state = wpgate_upgrade_start( $package, 'update_themes', $params );
	wp_clean_themes_cache( false );
	$theme   = wp_get_theme( $slug );
	$present = $theme->exists() && is_dir( $theme->get_stylesheet_directory() );

	$skin     = $swap ? wpgate_swap_skin() : new WP_Ajax_Upgrader_Skin();
	$upgrader = new Theme_Upgrader( $skin );
	$guard    = wpgate_guard_source_folder( $slug, "the theme $slug" );
	$swapping = $swap ? wpgate_swap_hooks( $upgrader, $swap, 'theme', $slug, $version ) : null;
	$offer    = array(
		'theme'       => $slug,
		'new_version' => $version,
		'url'         => '',
		'package'     => $package,
	);
	if ( $present ) {
		$method     = 'bulk_upgrade';
		$end_offers = wpgate_offer_only( 'update_themes', $slug, $offer );
		$results    = $upgrader->bulk_upgrade( array( $slug ), array( 'clear_update_cache' => false ) );
		$result     = is_array( $results ) && array_key_exists( $slug, $results ) ? $results[ $slug ] : $results;
		if ( true === $result ) {
			$result = new WP_Error( 'up_to_date', "WordPress saw no update offer for the theme $slug and installed nothing" );
		}
	} else {
		$method     = 'install';
		$end_offers = wpgate_offer_only( 'update_themes', $slug, null );
		$installed  = $upgrader->install( $package, array( 'overwrite_package' => true, 'clear_update_cache' => false ) );
		$result     = true === $installed ? $upgrader->result : $installed;
	}
	remove_filter( 'upgrader_source_selection', $guard, PHP_INT_MAX );
	if ( $swapping ) {
		$swapping['end']();
	}
	$problems = wpgate_finish_temp_backups( $upgrader );
	$end_offers();
	if ( ! $result || is_wp_error( $result ) || $skin->get_errors()->has_errors() ) {
		wpgate_fail( 'upgrade_failed', "WordPress could not install $label ($method): " . wpgate_upgrader_failure( $skin, $result, $problems ) );
	}
	if ( $swapping && ! $swapping['swapped'] ) {
		wpgate_fail( 'upgrade_failed', "$label: WordPress reported success, but the new version was never swapped in" );
	}
	clearstatcache();
	wp_clean_themes_cache( false );
	$theme = wp_get_theme( $slug );
	if ( ! $theme->exists() || ! is_file( $theme->get_stylesheet_directory() . '/style.css' ) ) {
		wpgate_fail( 'upgrade_failed', "$label: WordPress reported success, but there is no theme $slug in " . get_theme_root( $slug ) );
	}
	$found_version = $theme->get( 'Version' );
	if ( $found_version !== $version ) {
		wpgate_fail( 'upgrade_failed', "$label: WordPress reported success, but its style.css says version " . ( $found_version ? $found_version : '(none)' ) );
	}
	wpgate_upgrade_cleanup( $state );
	return array(
		'kind'     => 'theme',
		'slug'     => $slug,
		'version'  => $found_version,
		'method'   => $method,
		'active'   => get_stylesheet() === $slug,
		'parent'   => $theme->get_template() !== $slug ? $theme->get_template() : null,
		'swapped'  => $swapping ? true : null,
		'maintenance' => file_exists( ABSPATH . '.maintenance' ),
		'user'     => $state['user'],
		'messages' => array_map( 'wpgate_plain', $skin->get_upgrade_messages() ),
		'warnings' => $problems,
		'seconds'  => round( microtime( true ) - $state['started'], 3 ),
	);
}

// wp-config.php where WordPress finds it: in ABSPATH, or in the folder above when that is no other WordPress.
function wpgate_config_file() {
	if ( is_file( ABSPATH . 'wp-config.php' ) ) {
		return ABSPATH . 'wp-config.php';
	}
	return dirname( ABSPATH ) . '/wp-config.php';
}

/**
 * Installs WordPress VERSION from PACKAGE with Core_Upgrader::upgrade(), as update-core.php does,
 * from an offer that points every package at the local zip. The new update_core() ends with a
 * loopback request to wp-admin/upgrade.php?step=upgrade_db: it is answered here with a fake 200,
 * because wpgate runs the database upgrade itself (upgrade_db) in a fresh PHP process that loads
 * the new code. Afterwards .maintenance (unless hold_maintenance: see wpgate_hold_maintenance())
 * and the core_updater.lock this run took are gone, and
 * wp-config.php is byte for byte what it was (put back, and the run failed, if it was not).
 */
function wpgate_action_install_core( array $params ) {
	global $wp_version, $wpdb;
	list( , $package, $version ) = wpgate_upgrade_params( $params, 'core' );
	$label = "WordPress $version";
	$from  = $wp_version;
	wpgate_check_core_zip( $package, $version );
	$config_file  = wpgate_config_file();
	$config_bytes = file_get_contents( $config_file );
	$state        = wpgate_upgrade_start( $package, 'update_core', $params );
	// Another update's lock is left alone (Core_Upgrader refuses to start while it is fresh).
	$state['lock_before'] = wpgate_core_lock();
	wpgate_on_failure(
		function () use ( $state, $config_file, $config_bytes ) {
			wpgate_core_cleanup( $state, $config_file, $config_bytes );
		}
	);

	$db_upgrade_url = admin_url( 'upgrade.php?step=upgrade_db' );
	$blocked        = false;
	add_filter(
		'pre_http_request',
		function ( $pre, $args, $url ) use ( $db_upgrade_url, &$blocked ) {
			if ( $url !== $db_upgrade_url && false === strpos( (string) $url, '/upgrade.php?step=upgrade_db' ) ) {
				return $pre;
			}
			$blocked = true;
			return array(
				'headers'  => array(),
				'body'     => '',
				'response' => array( 'code' => 200, 'message' => 'OK' ),
				'cookies'  => array(),
				'filename' => null,
			);
		},
		5,
		3
	);
	$feedback = array();
	add_filter(
		'update_feedback',
		function ( $message ) use ( &$feedback ) {
			$feedback[] = wpgate_plain( $message );
			return $message;
		}
	);

	// update_core() checks PHP and MySQL against the new version.php itself; these fields only
	// describe the system, as the offers of WordPress's update API do.
	$offer = (object) array(
		'response'        => 'upgrade',
		'download'        => $package,
		'locale'          => get_locale(),
		'packages'        => (object) array(
			'full'        => $package,
			'no_content'  => $package,
			'new_bundled' => '',
			'partial'     => '',
			'rollback'    => '',
		),
		'current'         => $version,
		'version'         => $version,
		'php_version'     => PHP_VERSION,
		'mysql_version'   => $wpdb->db_version(),
		'new_bundled'     => '',
		'partial_version' => '',
	);
	$skin     = new WP_Ajax_Upgrader_Skin();
	$upgrader = new Core_Upgrader( $skin );
	$result   = $upgrader->upgrade(
		$offer,
		array(
			// The update API's checksums are out of reach, and wpgate keeps its own rollback point.
			'pre_check_md5'                => false,
			'attempt_rollback'             => false,
			'do_rollback'                  => false,
			// Moot while the bridge forces the direct filesystem method; strict all the same.
			'allow_relaxed_file_ownership' => false,
		)
	);
	$config_changed = wpgate_core_cleanup( $state, $config_file, $config_bytes );
	// The blocked version check after the update left a placeholder that would keep WordPress
	// from checking for core updates for hours: WordPress meant the transient to be gone.
	delete_site_transient( 'update_core' );
	if ( $config_changed ) {
		wpgate_fail( 'upgrade_failed', "$label: the update changed $config_file; it was put back as it was. " . ( is_wp_error( $result ) ? wpgate_upgrader_failure( $skin, $result ) : '' ) );
	}
	if ( ! $result || is_wp_error( $result ) ) {
		wpgate_fail( 'upgrade_failed', "WordPress could not update to $version: " . wpgate_upgrader_failure( $skin, $result ) );
	}
	clearstatcache();
	$version_file  = file_get_contents( ABSPATH . WPINC . '/version.php' );
	$found_version = wpgate_core_version( $version_file );
	if ( $found_version !== $version ) {
		wpgate_fail( 'upgrade_failed', "$label: WordPress reported success, but wp-includes/version.php says " . ( $found_version ? $found_version : '(nothing)' ) );
	}
	return array(
		'kind'                       => 'core',
		'slug'                       => 'wordpress',
		'from'                       => $from,
		'version'                    => $found_version,
		'method'                     => 'core_upgrade',
		'db_version'                 => (int) $wpdb->get_var( "SELECT option_value FROM $wpdb->options WHERE option_name = 'db_version'" ),
		'files_db_version'           => wpgate_core_db_version( $version_file ),
		'db_upgrade_request_blocked' => $blocked,
		'user'                       => $state['user'],
		'messages'                   => array_values( array_filter( $feedback ) ),
		'seconds'                    => round( microtime( true ) - $state['started'], 3 ),
	);
}

// The value of WordPress's core update lock, read from the database itself, or null.
function wpgate_core_lock() {
	global $wpdb;
	return $wpdb->get_var( "SELECT option_value FROM $wpdb->options WHERE option_name = 'core_updater.lock'" );
}

// After a core update, whatever happened: the common cleanup, the lock this run took released,
// wp-config.php put back if it changed. Returns whether it had changed.
function wpgate_core_cleanup( array $state, $config_file, $config_bytes ) {
	wpgate_upgrade_cleanup( $state );
	// A lock that is not the one found at the start was taken by this run.
	$lock = wpgate_core_lock();
	if ( null !== $lock && $lock !== $state['lock_before'] ) {
		delete_option( 'core_updater.lock' );
	}
	clearstatcache();
	if ( false !== $config_bytes && @file_get_contents( $config_file ) !== $config_bytes ) {
		file_put_contents( $config_file, $config_bytes );
		return true;
	}
	return false;
}

/**
 * WordPress's database upgrade, wp_upgrade(), in a process of its own that loaded the new code
 * as wp-admin/upgrade.php does (installing: no plugins, no theme). On a multisite only this site's
 * tables and the network's are upgraded; the other sites' are not (out of wpgate's scope).
 */
function wpgate_action_upgrade_db( array $params ) {
	global $wpdb, $wp_db_version, $wp_version;
	require_once ABSPATH . 'wp-admin/includes/upgrade.php';
	$read = function () use ( $wpdb ) {
		return (int) $wpdb->get_var( "SELECT option_value FROM $wpdb->options WHERE option_name = 'db_version'" );
	};
	$from = $read();
	wp_upgrade();
	wp_cache_delete( 'alloptions', 'options' );
	$to = $read();
	if ( $to !== (int) $wp_db_version ) {
		wpgate_fail( 'upgrade_failed', "the database upgrade ended at db_version $to, but WordPress $wp_version's files expect $wp_db_version" );
	}
	$result = array(
		'from'      => $from,
		'to'        => $to,
		'wordpress' => $wp_version,
		'upgraded'  => $from !== $to,
	);
	if ( is_multisite() ) {
		$result['multisite'] = 'only the main site and the network tables were upgraded; upgrade the other sites from Network Admin > Updates > Upgrade Network';
	}
	return $result;
}

/**
 * What an update may leave behind: .maintenance, WordPress's core update lock, and anything in
 * wp-content/upgrade/ or in wp-content/upgrade-temp-backup/ (its plugins/ and themes/ folders
 * themselves are WordPress's and stay).
 */
function wpgate_action_site_state( array $params ) {
	$lock      = wpgate_core_lock();
	$leftovers = array();
	$content   = untrailingslashit( WP_CONTENT_DIR );
	foreach ( array( 'upgrade' => array(), 'upgrade-temp-backup' => array( 'plugins', 'themes' ) ) as $folder => $kept ) {
		$dir = "$content/$folder";
		foreach ( is_dir( $dir ) ? scandir( $dir ) : array() as $name ) {
			if ( '.' === $name || '..' === $name ) {
				continue;
			}
			if ( in_array( $name, $kept, true ) && is_dir( "$dir/$name" ) ) {
				foreach ( scandir( "$dir/$name" ) as $inner ) {
					if ( '.' !== $inner && '..' !== $inner ) {
						$leftovers[] = "$dir/$name/$inner";
					}
				}
				continue;
			}
			$leftovers[] = "$dir/$name";
		}
	}
	sort( $leftovers );
	return array(
		'maintenance'       => file_exists( ABSPATH . '.maintenance' ),
		'core_updater_lock' => null !== $lock,
		'upgrade_leftovers' => $leftovers,
	);
}

/*
 * Backups. The database credentials come from wp-config.php as WordPress itself read them, so
 * that the dump client on the host connects exactly where WordPress does; wpgate hands them to
 * the client in a private options file, never on a command line.
 */

// Every base table of DATABASE with its exact row count and CHECKSUM TABLE ... EXTENDED value.
function wpgate_table_stats( $database ) {
	global $wpdb;
	$schema = '`' . str_replace( '`', '``', $database ) . '`';
	$wpdb->last_error = '';
	$names = $wpdb->get_col( "SHOW FULL TABLES FROM $schema WHERE Table_type = 'BASE TABLE'" );
	if ( $wpdb->last_error ) {
		wpgate_fail( 'database', "cannot list the tables of database $database: " . $wpdb->last_error );
	}
	$tables = array();
	foreach ( $names as $name ) {
		$quoted = $schema . '.`' . str_replace( '`', '``', $name ) . '`';
		$rows   = $wpdb->get_var( "SELECT COUNT(*) FROM $quoted" );
		$sum    = $wpdb->get_row( "CHECKSUM TABLE $quoted EXTENDED", ARRAY_N );
		if ( $wpdb->last_error ) {
			wpgate_fail( 'database', "cannot read table $name of database $database: " . $wpdb->last_error );
		}
		$tables[ $name ] = array(
			'rows'     => (int) $rows,
			'checksum' => ( $sum && null !== $sum[1] ) ? (int) $sum[1] : null,
		);
	}
	ksort( $tables, SORT_STRING );
	return (object) $tables;
}

// What a backup needs to know about the site's database, and its tables as they are now.
function wpgate_action_backup_facts( array $params ) {
	global $wpdb, $table_prefix;
	$parsed = $wpdb->parse_db_host( DB_HOST );
	if ( ! $parsed ) {
		wpgate_fail( 'database', 'DB_HOST in ' . wpgate_config_file() . ' cannot be parsed' );
	}
	list( $host, $port, $socket ) = $parsed;
	if ( 'localhost' === $host && ! $socket && ! $port && ini_get( 'mysqli.default_socket' ) ) {
		// Where PHP itself connects when DB_HOST says only "localhost".
		$socket = ini_get( 'mysqli.default_socket' );
	}
	return array(
		'database'     => array(
			'name'     => DB_NAME,
			'user'     => DB_USER,
			'password' => DB_PASSWORD,
			'host'     => $host,
			'port'     => $port ? (int) $port : null,
			'socket'   => $socket ? $socket : null,
			'charset'  => defined( 'DB_CHARSET' ) && DB_CHARSET ? DB_CHARSET : 'utf8mb4',
		),
		'server'       => $wpdb->db_server_info(),
		'table_prefix' => $table_prefix,
		'content_dir'  => WP_CONTENT_DIR,
		'config_file'  => wpgate_config_file(),
		// A caller that needs only where to connect (a snapshot of the rows) skips the checksums.
		'tables'       => empty( $params['without_tables'] ) ? wpgate_table_stats( DB_NAME ) : null,
	);
}

// The tables of the site's database, or of another one its user may read (a scratch copy).
function wpgate_action_table_stats( array $params ) {
	$database = isset( $params['database'] ) && '' !== $params['database'] ? (string) $params['database'] : DB_NAME;
	return wpgate_table_stats( $database );
}

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

/*
 * Caches (gate 6.5). The object cache is flushed as WordPress itself would; page-cache plugins
 * are found by the functions, classes and hooks they define when active, and purged through
 * their own public functions or actions (never by deleting their files).
 */

// wp_cache_flush(), and whether a persistent object cache (a wp-content/object-cache.php drop-in) took it.
function wpgate_action_flush_object_cache( array $params ) {
	$persistent = (bool) wp_using_ext_object_cache();
	$dropin     = null;
	if ( $persistent && is_file( WP_CONTENT_DIR . '/object-cache.php' ) ) {
		require_once ABSPATH . 'wp-admin/includes/plugin.php';
		$data   = get_plugin_data( WP_CONTENT_DIR . '/object-cache.php', false, false );
		$dropin = ! empty( $data['Name'] ) ? $data['Name'] . ( ! empty( $data['Version'] ) ? ' ' . $data['Version'] : '' ) : 'object-cache.php';
	}
	$flushed = wp_cache_flush();
	return array(
		'persistent' => $persistent,
		'dropin'     => $dropin,
		// Some drop-ins return nothing; only an explicit false is a refusal.
		'flushed'    => false === $flushed ? false : true,
	);
}

// Each known page-cache plugin: how to tell it is active, and its public purge.
function wpgate_page_cache_plugins() {
	return array(
		'wp-rocket'            => array(
			'detect' => function () { return function_exists( 'rocket_clean_domain' ); },
			'purge'  => function () { rocket_clean_domain(); return 'rocket_clean_domain()'; },
		),
		'w3-total-cache'       => array(
			'detect' => function () { return function_exists( 'w3tc_flush_all' ); },
			'purge'  => function () { w3tc_flush_all(); return 'w3tc_flush_all()'; },
		),
		'wp-super-cache'       => array(
			'detect' => function () { return function_exists( 'wp_cache_clear_cache' ); },
			'purge'  => function () { wp_cache_clear_cache(); return 'wp_cache_clear_cache()'; },
		),
		'litespeed-cache'      => array(
			'detect' => function () { return defined( 'LSCWP_V' ); },
			'purge'  => function () { do_action( 'litespeed_purge_all' ); return "do_action('litespeed_purge_all')"; },
		),
		'wp-fastest-cache'     => array(
			'detect' => function () {
				return class_exists( 'WpFastestCache' ) || function_exists( 'wpfc_clear_all_cache' );
			},
			'purge'  => function () {
				if ( isset( $GLOBALS['wp_fastest_cache'] ) && method_exists( $GLOBALS['wp_fastest_cache'], 'deleteCache' ) ) {
					$GLOBALS['wp_fastest_cache']->deleteCache( true );
					return '$wp_fastest_cache->deleteCache(true)';
				}
				wpfc_clear_all_cache( true );
				return 'wpfc_clear_all_cache(true)';
			},
		),
		'siteground-optimizer' => array(
			'detect' => function () {
				return function_exists( 'sg_cachepress_purge_everything' ) || function_exists( 'sg_cachepress_purge_cache' );
			},
			'purge'  => function () {
				if ( function_exists( 'sg_cachepress_purge_everything' ) ) {
					sg_cachepress_purge_everything();
					return 'sg_cachepress_purge_everything()';
				}
				sg_cachepress_purge_cache();
				return 'sg_cachepress_purge_cache()';
			},
		),
		'breeze'               => array(
			'detect' => function () { return class_exists( 'Breeze_PurgeCache' ) || defined( 'BREEZE_VERSION' ); },
			'purge'  => function () { do_action( 'breeze_clear_all_cache' ); return "do_action('breeze_clear_all_cache')"; },
		),
		'wpgate-pagecache'     => array(
			'detect' => function () { return function_exists( 'wpgate_pagecache_purge_all' ); },
			'purge'  => function () {
				$removed = wpgate_pagecache_purge_all();
				return array( 'wpgate_pagecache_purge_all()', "$removed cached page(s) removed" );
			},
		),
		'wpgate-diskcache'     => array(
			'detect' => function () { return function_exists( 'wpgate_diskcache_clear_cache' ); },
			'purge'  => function () {
				$removed = wpgate_diskcache_clear_cache();
				return array( 'wpgate_diskcache_clear_cache()', "$removed cached page(s) removed" );
			},
		),
		'autoptimize'          => array(
			'detect' => function () { return class_exists( 'autoptimizeCache' ) && method_exists( 'autoptimizeCache', 'clearall' ); },
			'purge'  => function () { autoptimizeCache::clearall(); return 'autoptimizeCache::clearall()'; },
		),
		'nginx-helper'         => array(
			'detect' => function () { return class_exists( 'Nginx_Helper' ) || defined( 'NGINX_HELPER_BASEURL' ); },
			'purge'  => function () { do_action( 'rt_nginx_helper_purge_all' ); return "do_action('rt_nginx_helper_purge_all')"; },
		),
		'proxy-cache-purge'    => array(
			'detect' => function () { return class_exists( 'VarnishPurger' ); },
			'purge'  => function () {
				// The plugin's own "purge everything": a regex purge of the home URL.
				$url    = home_url() . '/?vhp-regex';
				$method = new ReflectionMethod( 'VarnishPurger', 'purge_url' );
				if ( $method->isStatic() ) {
					VarnishPurger::purge_url( $url );
				} elseif ( isset( $GLOBALS['purger'] ) && $GLOBALS['purger'] instanceof VarnishPurger ) {
					$GLOBALS['purger']->purge_url( $url );
				} else {
					throw new RuntimeException( 'the plugin\'s purger ($purger) is not loaded' );
				}
				return "VarnishPurger purge_url('$url')";
			},
		),
	);
}

// params: plugins (keys), purge (bool). Answers, per key: active, and when purging ok, ran, result or error.
function wpgate_action_page_caches( array $params ) {
	$known  = wpgate_page_cache_plugins();
	$purge  = ! empty( $params['purge'] );
	$answer = array();
	foreach ( isset( $params['plugins'] ) ? (array) $params['plugins'] : array() as $key ) {
		$key = (string) $key;
		if ( ! isset( $known[ $key ] ) ) {
			$answer[ $key ] = array( 'active' => false, 'unknown' => true );
			continue;
		}
		$entry = array( 'active' => (bool) call_user_func( $known[ $key ]['detect'] ) );
		if ( $purge && $entry['active'] ) {
			try {
				$ran            = call_user_func( $known[ $key ]['purge'] );
				$entry['ok']     = true;
				$entry['ran']    = is_array( $ran ) ? $ran[0] : $ran;
				$entry['result'] = is_array( $ran ) ? $ran[1] : 'done';
			} catch ( Throwable $error ) {
				$entry['ok']    = false;
				$entry['error'] = get_class( $error ) . ': ' . $error->getMessage();
			}
		}
		$answer[ $key ] = $entry;
	}
	return (object) $answer;
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
