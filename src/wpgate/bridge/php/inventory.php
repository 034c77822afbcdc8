<?php
// What the site runs: `inventory` (core, plugins, themes, must-use plugins, drop-ins, with active state).

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
		// wpgate's own maintenance page, there only while core's files change (upgrader.py): not the site's.
		if ( 'maintenance.php' === $file
			&& false !== strpos( (string) @file_get_contents( WP_CONTENT_DIR . '/maintenance.php', false, null, 0, 512 ),
				'wpgate: the maintenance page' ) ) {
			continue;
		}
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
