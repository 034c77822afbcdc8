<?php
// What every update action shares: its parameters, the package's checks, the updater's user,
// the upgrader's start and cleanup, the maintenance file held, the offer that points WordPress at the local zip.

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
		$drain = array(
			'seconds' => isset( $params['drain_seconds'] ) ? min( 10.0, max( 0.0, (float) $params['drain_seconds'] ) ) : 0.0,
			'url'     => isset( $params['drain_url'] ) ? (string) $params['drain_url'] : '',
			'token'   => isset( $params['drain_token'] ) ? (string) $params['drain_token'] : '',
		);
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
 * Once maintenance is on, files change only after the drain: a request that had passed WordPress's
 * maintenance check just before would otherwise load half its code from the old files and half from
 * the new (a theme's templates gone from under it: an empty page). The drain asks the web server
 * (DRAIN['url'], wpgate's drain file, which waits until the requests it was running have ended), and
 * waits DRAIN['seconds'] where that cannot tell.
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
		public $drain       = array( 'seconds' => 0.0, 'url' => '', 'token' => '' );
		public $maintenance = 'hold'; // hold: written, never deleted; skip: never written (a swap)
		public $drained     = null;   // what the drain saw, once it ran

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
			if ( null === $this->drained ) {
				$this->drained = wpgate_drain( $this->drain );
			}
		}
	}
}

/**
 * The drain (see wpgate_hold_maintenance()): what the web server said, or the fixed wait where it could
 * not tell (the request failed, or the answer is not the drain file's).
 */
function wpgate_drain( array $drain ) {
	$began  = microtime( true );
	$answer = null;
	if ( '' !== $drain['url'] && function_exists( 'curl_init' ) ) {
		$curl = curl_init( $drain['url'] );
		curl_setopt_array(
			$curl,
			array(
				CURLOPT_RETURNTRANSFER => true,
				CURLOPT_CONNECTTIMEOUT => 5,
				CURLOPT_TIMEOUT        => 20,
				CURLOPT_FOLLOWLOCATION => false,
			)
		);
		$body = curl_exec( $curl );
		$code = (int) curl_getinfo( $curl, CURLINFO_HTTP_CODE );
		curl_close( $curl );
		$decoded = 200 === $code && is_string( $body ) ? json_decode( $body, true ) : null;
		if ( is_array( $decoded ) && isset( $decoded['wpgate'] ) && hash_equals( $drain['token'], (string) $decoded['wpgate'] ) ) {
			$answer = $decoded;
		}
	}
	$spent = microtime( true ) - $began;
	if ( $answer && ( ! empty( $answer['drained'] ) || ! empty( $answer['still_running'] ) ) ) {
		return array_filter(
			array(
				'how'           => isset( $answer['sapi'] ) ? $answer['sapi'] : null,
				'running'       => isset( $answer['running'] ) ? $answer['running'] : null,
				'still_running' => empty( $answer['still_running'] ) ? null : $answer['still_running'],
				'waited'        => round( $spent, 3 ),
			),
			function ( $value ) {
				return null !== $value;
			}
		);
	}
	$rest = $drain['seconds'] - $spent;
	if ( $rest > 0 ) {
		usleep( (int) ( $rest * 1000000 ) );
	}
	return array( 'how' => 'fixed', 'seconds' => $drain['seconds'] );
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
