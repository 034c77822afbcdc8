<?php
// Gate 6.5's purges inside WordPress: `flush_object_cache`, `page_caches`.

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
