<?php
// What a backup needs of the site's database: `backup_facts`, `table_stats`.

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
