<?php
// WordPress itself: `install_core`, `upgrade_db`, and `site_state` (what an update may leave behind).

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
	global $wp_version, $wpdb, $wp_filesystem;
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
		'drain'                      => isset( $wp_filesystem->drained ) ? $wp_filesystem->drained : null,
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
