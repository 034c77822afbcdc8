<?php
// The index of the bridge's actions: the request's action name → the function that answers it, the one
// table of what Python may ask (tests/unit/test_bridge_actions.py holds it to the Python callers). Then
// the dispatch: the action runs, its value is the answer; an exception is a failure with its file and line.

$wpgate_actions = array(
	// inventory.php
	'inventory'          => 'wpgate_action_inventory',
	// upgrade_components.php
	'install_plugin'     => 'wpgate_action_install_plugin',
	'install_theme'      => 'wpgate_action_install_theme',
	// upgrade_core.php
	'install_core'       => 'wpgate_action_install_core',
	'upgrade_db'         => 'wpgate_action_upgrade_db',
	'site_state'         => 'wpgate_action_site_state',
	// backup.php
	'backup_facts'       => 'wpgate_action_backup_facts',
	'table_stats'        => 'wpgate_action_table_stats',
	// monitor.php
	'log_facts'          => 'wpgate_action_log_facts',
	// caches.php
	'flush_object_cache' => 'wpgate_action_flush_object_cache',
	'page_caches'        => 'wpgate_action_page_caches',
);

$wpgate_action = (string) $wpgate_request['action'];
if ( ! isset( $wpgate_actions[ $wpgate_action ] ) ) {
	wpgate_fail( 'bad_request', 'the bridge has no action ' . $wpgate_request['action'] );
}
try {
	$wpgate_result = call_user_func( $wpgate_actions[ $wpgate_action ], isset( $wpgate_request['params'] ) ? (array) $wpgate_request['params'] : array() );
} catch ( Throwable $wpgate_error ) {
	wpgate_fail( 'exception', get_class( $wpgate_error ) . ': ' . $wpgate_error->getMessage(), array(
		'file' => $wpgate_error->getFile(),
		'line' => $wpgate_error->getLine(),
	) );
}
wpgate_answer( array( 'ok' => true, 'result' => $wpgate_result ) );
exit( 0 );
