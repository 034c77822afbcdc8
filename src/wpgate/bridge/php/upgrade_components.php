<?php
// Plugins and themes: the swap (staged folder, two renames) and the `install_plugin`, `install_theme` actions.

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

// ITEM (a plugin file, a theme slug) updated with the upgrader's bulk_upgrade(), as the Dashboard's "Update
// now" does, to the offer wpgate put in place; its result, an error where WordPress saw no offer for WHAT.
function wpgate_bulk_upgrade( $upgrader, $item, $what ) {
	// clear_update_cache false: WordPress would delete the stored offers; they are put back instead.
	$results = $upgrader->bulk_upgrade( array( $item ), array( 'clear_update_cache' => false ) );
	$result  = is_array( $results ) && array_key_exists( $item, $results ) ? $results[ $item ] : $results;
	if ( true === $result ) {
		$result = new WP_Error( 'up_to_date', "WordPress saw no update offer for $what and installed nothing" );
	}
	return $result;
}

// PACKAGE installed with the upgrader's install(), overwrite allowed, as an uploaded zip is: where wpgate
// moved the current folder aside. The upgrader's result (its account of where the files went), or the error.
function wpgate_install_package( $upgrader, $package ) {
	$installed = $upgrader->install( $package, array( 'overwrite_package' => true, 'clear_update_cache' => false ) );
	return true === $installed ? $upgrader->result : $installed;
}

// After the upgrader ran: wpgate's source-folder guard and swap hooks removed, WordPress's temporary backup
// finished (wpgate_finish_temp_backups); the problems that left.
function wpgate_end_upgrader( $upgrader, $guard, $swapping ) {
	remove_filter( 'upgrader_source_selection', $guard, PHP_INT_MAX );
	if ( $swapping ) {
		$swapping['end']();
	}
	return wpgate_finish_temp_backups( $upgrader );
}

// Fails the action unless WordPress reported success without an error and, where the new version was staged
// (wpgate_swap_hooks), it was swapped in.
function wpgate_check_upgrader_success( $label, $method, $skin, $result, array $problems, $swapping ) {
	if ( ! $result || is_wp_error( $result ) || $skin->get_errors()->has_errors() ) {
		wpgate_fail( 'upgrade_failed', "WordPress could not install $label ($method): " . wpgate_upgrader_failure( $skin, $result, $problems ) );
	}
	if ( $swapping && ! $swapping['swapped'] ) {
		wpgate_fail( 'upgrade_failed', "$label: WordPress reported success, but the new version was never swapped in" );
	}
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
		$result = wpgate_bulk_upgrade( $upgrader, $file, $file );
	} else {
		$method     = 'install';
		$end_offers = wpgate_offer_only( 'update_plugins', "$slug/$slug.php", null );
		$result     = wpgate_install_package( $upgrader, $package );
	}
	$problems = wpgate_end_upgrader( $upgrader, $guard, $swapping );
	$new_file = wpgate_plugin_file( $slug );
	$end_offers( $file ? $file : $new_file );
	wpgate_check_upgrader_success( $label, $method, $skin, $result, $problems, $swapping );
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
		$result     = wpgate_bulk_upgrade( $upgrader, $slug, "the theme $slug" );
	} else {
		$method     = 'install';
		$end_offers = wpgate_offer_only( 'update_themes', $slug, null );
		$result     = wpgate_install_package( $upgrader, $package );
	}
	$problems = wpgate_end_upgrader( $upgrader, $guard, $swapping );
	$end_offers();
	wpgate_check_upgrader_success( $label, $method, $skin, $result, $problems, $swapping );
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
