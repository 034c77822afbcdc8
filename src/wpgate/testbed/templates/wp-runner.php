<?php
// Runs PHP code (read from stdin) inside a loaded WordPress, from the command line:
//   php wp-runner.php ABSPATH SITE_URL [install]
// For test setup only. Nothing leaves the machine: every HTTP request WordPress makes is
// answered with an error at once, and mail goes nowhere.
if (PHP_SAPI !== 'cli' || $argc < 3) {
    fwrite(STDERR, "usage: php wp-runner.php ABSPATH SITE_URL [install]\n");
    exit(2);
}
$wpgate_abspath = rtrim($argv[1], '/') . '/';
$wpgate_url = parse_url($argv[2]);
$wpgate_code = stream_get_contents(STDIN);

// WordPress builds these hooks from the array when it loads (WP_Hook::build_preinitialized_hooks).
$GLOBALS['wp_filter'] = array(
    'pre_http_request' => array(10 => array(array(
        'function' => function ($preempt, $args, $url) {
            return new WP_Error('http_request_blocked', 'test bed: no HTTP from the command line: ' . $url);
        },
        'accepted_args' => 3,
    ))),
    'pre_wp_mail' => array(10 => array(array(
        'function' => function () { return true; },
        'accepted_args' => 1,
    ))),
);

// What a web request would have set: wp_guess_url() and friends read these.
$_SERVER['HTTP_HOST'] = $wpgate_url['host'] . (isset($wpgate_url['port']) ? ':' . $wpgate_url['port'] : '');
$_SERVER['SERVER_NAME'] = $wpgate_url['host'];
$_SERVER['SERVER_PORT'] = isset($wpgate_url['port']) ? (string) $wpgate_url['port'] : '80';
$_SERVER['REQUEST_METHOD'] = 'GET';
$_SERVER['SERVER_PROTOCOL'] = 'HTTP/1.1';
$_SERVER['REMOTE_ADDR'] = '127.0.0.1';

if (isset($argv[3]) && $argv[3] === 'install') {
    define('WP_INSTALLING', true);
    $_SERVER['REQUEST_URI'] = '/wp-admin/install.php';
    $_SERVER['SCRIPT_NAME'] = '/wp-admin/install.php';
    $_SERVER['PHP_SELF'] = '/wp-admin/install.php';
} else {
    $_SERVER['REQUEST_URI'] = '/';
    $_SERVER['SCRIPT_NAME'] = '/index.php';
    $_SERVER['PHP_SELF'] = '/index.php';
}
define('DISABLE_WP_CRON', true);

register_shutdown_function(function () {
    $error = error_get_last();
    if ($error && in_array($error['type'], array(E_ERROR, E_PARSE, E_CORE_ERROR, E_COMPILE_ERROR, E_USER_ERROR), true)) {
        fwrite(STDERR, sprintf("PHP fatal error: %s in %s:%d\n", $error['message'], $error['file'], $error['line']));
    }
});

chdir($wpgate_abspath);
require $wpgate_abspath . 'wp-load.php';
// WP_DEBUG_DISPLAY is false on the sites: let the caller see what went wrong.
ini_set('display_errors', 'stderr');
ini_set('log_errors', '1');

eval($wpgate_code);
